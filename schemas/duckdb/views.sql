-- sipas-pipeline result database: analysts' views over the current run of each year.
-- Recreated (CREATE OR REPLACE) on every publish, then commented again; a view column with no COMMENT ON
-- here takes the comment of the table column of the same name (publish.py), so every column has one.
-- The current run of a year is its latest published run; a failed run is never current.

CREATE OR REPLACE VIEW current_runs AS
SELECT *
FROM runs
WHERE status = 'published'
QUALIFY row_number() OVER (PARTITION BY year ORDER BY finished_at DESC, run_id DESC) = 1;
COMMENT ON VIEW current_runs IS 'The current run (lần chạy hiện hành) of each year: its latest published run';

CREATE OR REPLACE VIEW current_indicator_values AS
SELECT v.year, v.unit_level, v.unit_code, u.name_vi AS unit_name_vi, u.name_en AS unit_name_en, u.name_sort AS unit_sort_key,
       u.region_code, v.indicator_id, i.type, nullif(i.part, '') AS part, nullif(i.element, '') AS element, i.label_vi, i.label_en,
       v.value, v.se, v.ci_low, v.ci_high, v.df, v.deff, v.n_eff, v.small_sample, v.reliability, v.reliability_reason,
       v.se_stabilised, v.ci_low_stabilised, v.ci_high_stabilised, v.df_stabilised,
       v.numerator, v.denominator, v.n, v.incomplete_reason, v.run_id
FROM indicator_values v
JOIN current_runs r USING (run_id)
LEFT JOIN units u ON u.year = v.year AND u.unit_level = v.unit_level AND u.unit_code = v.unit_code
LEFT JOIN indicators i ON i.year = v.year AND i.indicator_id = v.indicator_id;
COMMENT ON VIEW current_indicator_values IS 'Indicator values (giá trị chỉ tiêu) of the current run per year, with unit names and indicator labels';

CREATE OR REPLACE VIEW current_sipas_indices AS
SELECT s.year, s.unit_level, s.unit_code, u.name_vi AS unit_name_vi, u.name_en AS unit_name_en, u.name_sort AS unit_sort_key,
       u.region_code, s.level, s.node, t.parent, t.label_vi, t.label_en, s.value, s.se, s.ci_low, s.ci_high, s.df, s.deff, s.n_eff,
       s.small_sample, s.reliability, s.reliability_reason, s.se_stabilised, s.ci_low_stabilised, s.ci_high_stabilised,
       s.df_stabilised, s.n, s.incomplete_reason, s.run_id
FROM sipas_indices s
JOIN current_runs r USING (run_id)
LEFT JOIN units u ON u.year = s.year AND u.unit_level = s.unit_level AND u.unit_code = s.unit_code
LEFT JOIN sipas_structure t ON t.year = s.year AND t.level = s.level AND t.node = s.node;
COMMENT ON VIEW current_sipas_indices IS 'SIPAS index at every level of its tree (element, part, index) for the current run, with names and labels';

-- PAR INDEX for analysts (release block: issue #14) --------------------------------------------------------------
-- One key (unit_code) with unit_level, names beside, per cent of maximum, and region / nation rows (the mean of
-- their provinces with a figure) so a region's or the nation's PAR fields need no GROUP BY.

CREATE OR REPLACE VIEW current_par_points AS
WITH province AS (
    SELECT p.year, 'province' AS unit_level, p.province_code AS unit_code, u.region_code, p.level, p.node,
           p.points, p.se, p.max_points, p.self_points, 1::BIGINT AS provinces, p.run_id
    FROM par_points p
    JOIN current_runs r USING (run_id)
    LEFT JOIN units u ON u.year = p.year AND u.unit_level = 'province' AND u.unit_code = p.province_code
), area AS (
    SELECT year, 'region' AS unit_level, region_code AS unit_code, region_code, level, node, avg(points) AS points,
           NULL::DOUBLE AS se, any_value(max_points) AS max_points, avg(self_points) AS self_points,
           count(*) AS provinces, any_value(run_id) AS run_id
    FROM province GROUP BY year, region_code, level, node
    UNION ALL
    SELECT year, 'nation', 'VN', NULL, level, node, avg(points), NULL, any_value(max_points), avg(self_points), count(*),
           any_value(run_id)
    FROM province GROUP BY year, level, node
)
SELECT a.year, a.unit_level, a.unit_code, u.name_vi AS unit_name_vi, u.name_en AS unit_name_en,
       u.name_sort AS unit_sort_key, a.region_code, a.level, a.node, s.criterion_id, s.field_id, s.kind, s.label_vi,
       s.label_en, a.points, a.se, a.max_points, round(100 * a.points / nullif(a.max_points, 0), 4) AS pct_of_max,
       a.self_points, a.provinces, a.run_id
FROM (SELECT * FROM province UNION ALL SELECT * FROM area) a
LEFT JOIN units u ON u.year = a.year AND u.unit_level = a.unit_level AND u.unit_code = a.unit_code
LEFT JOIN par_structure s ON s.year = a.year AND s.level = a.level AND s.node = a.node;
COMMENT ON VIEW current_par_points IS 'PAR INDEX points (điểm Chỉ số CCHC) per province, region and the nation, sub-criterion / criterion / field, with per cent of maximum, current run';

CREATE OR REPLACE VIEW current_par_index AS
WITH parts AS (
    SELECT year, sum(max_points) FILTER (kind = 'appraisal') AS appraisal_max,
           sum(max_points) FILTER (kind IN ('survey_official', 'survey_citizen')) AS survey_max
    FROM par_structure WHERE level = 'subcriterion' GROUP BY year
), province AS (
    SELECT t.year, 'province' AS unit_level, t.province_code AS unit_code, u.region_code, t.par_index, t.se, t.ci_low,
           t.ci_high, t.df, t.appraisal_points, t.survey_points, t."group" AS par_group, 1::BIGINT AS provinces,
           t.reliability, t.reliability_reason, t.incomplete_reason, t.official_cluster, t.run_id
    FROM par_totals t
    JOIN current_runs r USING (run_id)
    LEFT JOIN units u ON u.year = t.year AND u.unit_level = 'province' AND u.unit_code = t.province_code
), area AS (
    SELECT year, 'region' AS unit_level, region_code AS unit_code, region_code, avg(par_index) AS par_index,
           NULL::DOUBLE AS se, NULL::DOUBLE AS ci_low, NULL::DOUBLE AS ci_high, NULL::BIGINT AS df,
           avg(appraisal_points) AS appraisal_points, avg(survey_points) AS survey_points, NULL AS par_group,
           count(par_index) AS provinces, NULL::VARCHAR AS reliability, NULL::VARCHAR AS reliability_reason,
           nullif(string_agg(unit_code, ', ' ORDER BY unit_code) FILTER (par_index IS NULL), '') AS incomplete_reason,
           NULL::VARCHAR AS official_cluster, any_value(run_id) AS run_id
    FROM province GROUP BY year, region_code
    UNION ALL
    SELECT year, 'nation', 'VN', NULL, avg(par_index), NULL, NULL, NULL, NULL, avg(appraisal_points), avg(survey_points),
           NULL, count(par_index), NULL, NULL, nullif(string_agg(unit_code, ', ' ORDER BY unit_code) FILTER (par_index IS NULL), ''),
           NULL, any_value(run_id)
    FROM province GROUP BY year
)
SELECT a.year, a.unit_level, a.unit_code, u.name_vi AS unit_name_vi, u.name_en AS unit_name_en,
       u.name_sort AS unit_sort_key, a.region_code, a.par_index, a.se, a.ci_low, a.ci_high, a.df, a.reliability,
       a.reliability_reason, a.official_cluster, a.appraisal_points,
       round(100 * a.appraisal_points / p.appraisal_max, 4) AS appraisal_pct_of_max, a.survey_points,
       round(100 * a.survey_points / p.survey_max, 4) AS survey_pct_of_max, a.par_group, a.provinces,
       k.rank_national, k.rank_low, k.rank_high, k.rank_regional, k.rank_regional_low, k.rank_regional_high,
       k.rank_simul_low, k.rank_simul_high, k.in_top5_set, k.in_bottom5_set,
       k.p_top5, k.p_bottom5, k.differs_from_above, k.change_value, k.change_se, k.change_ci_low, k.change_ci_high,
       k.change_significant, k.change_places, k.change_basis, k.change_method, a.incomplete_reason, a.run_id
FROM (SELECT * FROM province UNION ALL SELECT * FROM area) a
LEFT JOIN parts p ON p.year = a.year
LEFT JOIN units u ON u.year = a.year AND u.unit_level = a.unit_level AND u.unit_code = a.unit_code
LEFT JOIN ranks k ON a.unit_level = 'province' AND k.run_id = a.run_id AND k.province_code = a.unit_code AND k.measure = 'par';
COMMENT ON VIEW current_par_index IS 'PAR INDEX (Chỉ số CCHC) per province, region and the nation for the current run: total (per cent of 100), parts in points and per cent of maximum, group, ranks and change';
COMMENT ON COLUMN current_par_points.unit_level IS 'province (tỉnh), region (vùng: mean of its provinces) or nation (toàn quốc: mean of all provinces)';
COMMENT ON COLUMN current_par_points.pct_of_max IS 'Points as per cent of the maximum (% điểm tối đa): 100 x points / max_points';
COMMENT ON COLUMN current_par_points.provinces IS 'Provinces the row stands for: 1 on a province row, the provinces averaged on region and nation rows';
COMMENT ON COLUMN current_par_points.points IS 'Points obtained (điểm đạt được); on region and nation rows the mean of their provinces';
COMMENT ON COLUMN current_par_index.unit_level IS 'province (tỉnh), region (vùng: mean of its provinces with a value) or nation (toàn quốc)';
COMMENT ON COLUMN current_par_index.par_index IS 'PAR INDEX value 0-100 (Chỉ số CCHC, % of the maximum 100); on region and nation rows the mean of their provinces with a value';
COMMENT ON COLUMN current_par_index.par_group IS 'Group (nhóm) A-E by the PAR INDEX, bounds in methodology.yaml; null on region and nation rows';
COMMENT ON COLUMN current_par_index.appraisal_pct_of_max IS 'Appraisal points as per cent of their maximum (% điểm tối đa thẩm định)';
COMMENT ON COLUMN current_par_index.survey_pct_of_max IS 'Survey points as per cent of their maximum (% điểm tối đa điều tra xã hội học)';
COMMENT ON COLUMN current_par_index.provinces IS 'Provinces with a value the row stands for (1 on a province row)';
COMMENT ON COLUMN current_par_index.incomplete_reason IS 'Why a province has no value (thiếu dữ liệu); on region and nation rows the provinces their mean leaves out; null when complete';

CREATE OR REPLACE VIEW current_ranks AS
SELECT k.year, k.measure, k.province_code AS unit_code, u.name_vi AS unit_name_vi, u.name_en AS unit_name_en,
       u.name_sort AS unit_sort_key, k.region_code,
       k.value, k.se, k.df, k.rank_national, k.rank_low, k.rank_high, k.rank_regional, k.rank_regional_low,
       k.rank_regional_high, k.rank_simul_low, k.rank_simul_high, k.in_top5_set, k.in_bottom5_set, k.p_top5, k.p_bottom5,
       k.differs_from_above, k.change_value, k.change_se, k.change_ci_low,
       k.change_ci_high, k.change_significant, k.change_places, k.change_basis, k.change_method, k.previous_se, k.reliability, k.reliability_reason,
       k.incomplete_reason, k.run_id
FROM ranks k
JOIN current_runs r USING (run_id)
LEFT JOIN units u ON u.year = k.year AND u.unit_level = 'province' AND u.unit_code = k.province_code;
COMMENT ON VIEW current_ranks IS 'Ranks (xếp hạng) of the provinces by SIPAS, its parts and the PAR INDEX for the current run';

-- Quarantine for analysts (release block: issue #14) -----------------------------------------------------------

CREATE OR REPLACE VIEW current_quarantine AS
SELECT q.run_id, q.year, q.source, q.batch_id, q.source_file, q.source_row, q.form_id, u.unit_code,
       u.name_vi AS unit_name_vi, u.name_en AS unit_name_en, q.column_name, q.rule, q.value, q.message, q.record
FROM quarantine q
JOIN current_runs r USING (run_id)
LEFT JOIN units u ON u.year = q.year AND u.unit_level = 'province' AND u.unit_code = q.province_code;
COMMENT ON VIEW current_quarantine IS 'Rows rejected by validation in the current run (dòng bị cách ly), one row per reason (one row per form: current_quarantined_forms)';
COMMENT ON COLUMN current_quarantine.unit_code IS 'Province code (mã tỉnh) as resolved at ingest; null when the province text could not be resolved';

CREATE OR REPLACE VIEW current_quarantined_forms AS
SELECT q.year, q.source, q.source_file, q.source_row, any_value(q.form_id) AS form_id,
       any_value(u.unit_code) AS unit_code, any_value(u.name_vi) AS unit_name_vi, any_value(u.name_en) AS unit_name_en,
       any_value(q.value) FILTER (q.column_name = 'province_code') AS province_text,
       count(*) AS reasons, list(DISTINCT q.rule ORDER BY q.rule) AS rules,
       string_agg(coalesce(q.column_name || ': ', '') || q.message, '; ' ORDER BY q.column_name, q.rule) AS messages,
       any_value(q.batch_id) AS batch_id, q.run_id
FROM quarantine q
JOIN current_runs r USING (run_id)
LEFT JOIN units u ON u.year = q.year AND u.unit_level = 'province' AND u.unit_code = q.province_code
GROUP BY q.run_id, q.year, q.source, q.source_file, q.source_row;
COMMENT ON VIEW current_quarantined_forms IS 'Quarantined forms (phiếu bị cách ly) of the current run: one row per form with every reason, the province resolved at ingest with its name and the raw province text beside';
COMMENT ON COLUMN current_quarantined_forms.unit_code IS 'Province code (mã tỉnh) resolved at ingest; null when the text could not be resolved (see province_text)';
COMMENT ON COLUMN current_quarantined_forms.unit_name_vi IS 'Province name in Vietnamese (tên tỉnh)';
COMMENT ON COLUMN current_quarantined_forms.unit_name_en IS 'Province name in English';
COMMENT ON COLUMN current_quarantined_forms.province_text IS 'The province as written in the file, when that text broke a rule (chưa xác định được tỉnh)';
COMMENT ON COLUMN current_quarantined_forms.reasons IS 'Number of reasons (số lý do) the form was quarantined for';
COMMENT ON COLUMN current_quarantined_forms.rules IS 'Rules broken (quy tắc), sorted';
COMMENT ON COLUMN current_quarantined_forms.messages IS 'Every reason in words, column first: column: message; ...';

-- Corrections with their province and file hash (release block: issue #14)
CREATE OR REPLACE VIEW current_corrections AS
SELECT c.run_id, c.year, c.file, c.file_sha256, c.line, c.action, c.source, c.form_id, c.province_code AS unit_code,
       u.name_vi AS unit_name_vi, u.name_en AS unit_name_en, c.field, c.old_value, c.new_value, c.reason,
       c.requested_by, c.requested_at, c."rows", c.outcome
FROM corrections c
JOIN current_runs r USING (run_id)
LEFT JOIN units u ON u.year = c.year AND u.unit_level = 'province' AND u.unit_code = c.province_code;
COMMENT ON VIEW current_corrections IS 'Corrections (đính chính) applied by the current run of each year, with the province and the correction file''s content hash';
COMMENT ON COLUMN current_corrections.unit_code IS 'Province (mã tỉnh) of the corrected form';
COMMENT ON COLUMN current_corrections.unit_name_vi IS 'Province name in Vietnamese (tên tỉnh)';
COMMENT ON COLUMN current_corrections.unit_name_en IS 'Province name in English';

-- Derived view columns whose names no table column shares.
COMMENT ON COLUMN current_indicator_values.unit_sort_key IS 'Sort key for Vietnamese alphabetical order of the name (khóa sắp xếp tiếng Việt): ORDER BY unit_sort_key puts Bạc Liêu before Bình Định';
COMMENT ON COLUMN current_sipas_indices.unit_sort_key IS 'Sort key for Vietnamese alphabetical order of the name (khóa sắp xếp tiếng Việt): ORDER BY unit_sort_key puts Bạc Liêu before Bình Định';
COMMENT ON COLUMN current_par_points.unit_sort_key IS 'Sort key for Vietnamese alphabetical order of the name (khóa sắp xếp tiếng Việt): ORDER BY unit_sort_key puts Bạc Liêu before Bình Định';
COMMENT ON COLUMN current_par_index.unit_sort_key IS 'Sort key for Vietnamese alphabetical order of the name (khóa sắp xếp tiếng Việt): ORDER BY unit_sort_key puts Bạc Liêu before Bình Định';
COMMENT ON COLUMN current_ranks.unit_sort_key IS 'Sort key for Vietnamese alphabetical order of the name (khóa sắp xếp tiếng Việt): ORDER BY unit_sort_key puts Bạc Liêu before Bình Định';
COMMENT ON COLUMN current_indicator_values.unit_name_vi IS 'Unit name in Vietnamese (tên đơn vị)';
COMMENT ON COLUMN current_indicator_values.unit_name_en IS 'Unit name in English';
COMMENT ON COLUMN current_sipas_indices.unit_name_vi IS 'Unit name in Vietnamese (tên đơn vị)';
COMMENT ON COLUMN current_sipas_indices.unit_name_en IS 'Unit name in English';
COMMENT ON COLUMN current_par_points.unit_name_vi IS 'Unit name in Vietnamese (tên đơn vị)';
COMMENT ON COLUMN current_par_points.unit_name_en IS 'Unit name in English';
COMMENT ON COLUMN current_par_index.unit_name_vi IS 'Unit name in Vietnamese (tên đơn vị)';
COMMENT ON COLUMN current_par_index.unit_name_en IS 'Unit name in English';
COMMENT ON COLUMN current_ranks.unit_code IS 'Two-digit province code (mã tỉnh)';
COMMENT ON COLUMN current_ranks.unit_name_vi IS 'Province name in Vietnamese (tên tỉnh)';
COMMENT ON COLUMN current_ranks.unit_name_en IS 'Province name in English';
COMMENT ON COLUMN current_quarantine.unit_name_vi IS 'Province name in Vietnamese (tên tỉnh)';
COMMENT ON COLUMN current_quarantine.unit_name_en IS 'Province name in English';

-- Contrasts for analysts (release: issue #23) --------------------------------------------------------------------
CREATE OR REPLACE VIEW current_contrasts AS
SELECT c.year, c.unit_level, c.unit_code, u.name_vi AS unit_name_vi, u.name_en AS unit_name_en, u.name_sort AS unit_sort_key,
       u.region_code, c.contrast, c.measure, c.value, c.se, c.df, c.ci_low, c.ci_high, c.significant, c.run_id
FROM contrasts c
JOIN current_runs r USING (run_id)
LEFT JOIN units u ON u.year = c.year AND u.unit_level = c.unit_level AND u.unit_code = c.unit_code;
COMMENT ON VIEW current_contrasts IS 'The policy-minus-service gap and each province''s difference from the national mean, with se, interval and significance, current run: SELECT unit_name_vi, value, se, significant FROM current_contrasts WHERE contrast = ''policy_minus_service'' AND unit_level = ''province'' ORDER BY value';
COMMENT ON COLUMN current_contrasts.unit_sort_key IS 'Sort key for Vietnamese alphabetical order of the name (khóa sắp xếp tiếng Việt)';
COMMENT ON COLUMN current_contrasts.unit_name_vi IS 'Unit name in Vietnamese (tên đơn vị)';
COMMENT ON COLUMN current_contrasts.unit_name_en IS 'Unit name in English';

-- What changed between two runs (so sánh hai lần chạy) --------------------------------------------------------------

CREATE OR REPLACE MACRO run_diff(run_a, run_b) AS TABLE
WITH pairs AS (
    SELECT 'indicator' AS kind, unit_level, unit_code, indicator_id AS item, a.value AS value_a, b.value AS value_b,
           NULL::BIGINT AS rank_a, NULL::BIGINT AS rank_b
    FROM (SELECT * FROM indicator_values WHERE run_id = run_a) a
    FULL JOIN (SELECT * FROM indicator_values WHERE run_id = run_b) b USING (unit_level, unit_code, indicator_id)
    UNION ALL
    SELECT 'sipas_index', unit_level, unit_code, level || ':' || node, a.value, b.value, NULL, NULL
    FROM (SELECT * FROM sipas_indices WHERE run_id = run_a) a
    FULL JOIN (SELECT * FROM sipas_indices WHERE run_id = run_b) b USING (unit_level, unit_code, level, node)
    UNION ALL
    SELECT 'par_points', 'province', province_code, level || ':' || node, a.points, b.points, NULL, NULL
    FROM (SELECT * FROM par_points WHERE run_id = run_a) a
    FULL JOIN (SELECT * FROM par_points WHERE run_id = run_b) b USING (province_code, level, node)
    UNION ALL
    SELECT 'rank', 'province', province_code, measure, a.value, b.value, a.rank_national, b.rank_national
    FROM (SELECT * FROM ranks WHERE run_id = run_a) a
    FULL JOIN (SELECT * FROM ranks WHERE run_id = run_b) b USING (province_code, measure)
    UNION ALL  -- a PAR INDEX group that changed: item 'par:A->B', the values beside
    SELECT 'group', 'province', province_code, 'par:' || coalesce(a."group", '–') || '->' || coalesce(b."group", '–'),
           a.par_index, b.par_index, NULL, NULL
    FROM (SELECT * FROM par_totals WHERE run_id = run_a) a
    FULL JOIN (SELECT * FROM par_totals WHERE run_id = run_b) b USING (province_code)
    WHERE a."group" IS DISTINCT FROM b."group"
)
SELECT kind, unit_level, unit_code,
       (SELECT any_value(u.name_vi) FROM units u WHERE u.unit_level = pairs.unit_level AND u.unit_code = pairs.unit_code
          AND u.year = (SELECT year FROM runs WHERE run_id = run_b)) AS unit_name_vi,
       (SELECT any_value(u.name_en) FROM units u WHERE u.unit_level = pairs.unit_level AND u.unit_code = pairs.unit_code
          AND u.year = (SELECT year FROM runs WHERE run_id = run_b)) AS unit_name_en,
       item, value_a, value_b, value_b - value_a AS change, rank_a, rank_b, rank_a - rank_b AS places
FROM pairs
WHERE value_a IS DISTINCT FROM value_b OR rank_a IS DISTINCT FROM rank_b
ORDER BY abs(coalesce(rank_a - rank_b, 0)) DESC, abs(coalesce(value_b - value_a, 0)) DESC, kind, unit_level, unit_code, item;
COMMENT ON MACRO TABLE run_diff IS 'What moved between two runs (so sánh hai lần chạy): SELECT * FROM run_diff(''run A'', ''run B''); one row per value that differs, and one (kind group, item par:A->B) per PAR INDEX group that changed (kind, unit_level, unit_code, unit names, item, value_a, value_b, change, rank_a, rank_b, places), ranks first, biggest moves first';

CREATE OR REPLACE VIEW current_changes AS
WITH published AS (
    SELECT year, run_id, results_hash, row_number() OVER (PARTITION BY year ORDER BY finished_at DESC, run_id DESC) AS k
    FROM runs WHERE status = 'published'
), previous AS (  -- the latest earlier run whose results differ: an identical re-run does not hide the last real change
    SELECT c.year, c.run_id, arg_min(p.run_id, p.k) AS previous_run_id
    FROM published c JOIN published p ON p.year = c.year AND p.k > 1 AND p.results_hash IS DISTINCT FROM c.results_hash
    WHERE c.k = 1 GROUP BY c.year, c.run_id
)
SELECT c.year, c.previous_run_id, c.run_id, d.*
FROM previous c
CROSS JOIN LATERAL (SELECT * FROM run_diff(c.previous_run_id, c.run_id)) d;
COMMENT ON VIEW current_changes IS 'What the current run of each year changed against the last earlier run with different results (run_diff of the two): an identical re-run keeps showing the last real change';
COMMENT ON COLUMN current_changes.previous_run_id IS 'The latest earlier published run of the year whose results differ from the current run''s';
COMMENT ON COLUMN current_changes.kind IS 'indicator, sipas_index, par_points, rank or group (a PAR INDEX group that changed: item par:A->B)';
COMMENT ON COLUMN current_changes.item IS 'Indicator id; level:node of the SIPAS tree or of the PAR structure; the measure ranked; or par:<old group>-><new group>';
COMMENT ON COLUMN current_changes.value_a IS 'Value in the previous run';
COMMENT ON COLUMN current_changes.value_b IS 'Value in the current run';
COMMENT ON COLUMN current_changes.change IS 'value_b - value_a';
COMMENT ON COLUMN current_changes.rank_a IS 'National rank in the previous run (rank rows)';
COMMENT ON COLUMN current_changes.rank_b IS 'National rank in the current run (rank rows)';
COMMENT ON COLUMN current_changes.places IS 'Places gained (positive = moved up)';
COMMENT ON COLUMN current_changes.unit_name_vi IS 'Unit name in Vietnamese (tên đơn vị)';
COMMENT ON COLUMN current_changes.unit_name_en IS 'Unit name in English';

-- ---- Series across years (issue #13, year2025): kept apart from the analyst views above ----------------------
CREATE OR REPLACE VIEW unit_series AS
SELECT k.unit_code, k.year AS unit_year, k.year, k.measure, k.unit_name_vi, k.unit_name_en,
       k.value, k.se, k.df, k.rank_national, 'results' AS basis, k.run_id
FROM current_ranks k
UNION ALL
SELECT k.unit_code, k.year, m.from_year, k.measure, k.unit_name_vi, k.unit_name_en,
       k.value - k.change_value, coalesce(k.previous_se, sqrt(greatest(k.change_se * k.change_se - k.se * k.se, 0))), NULL,
       k.rank_national + k.change_places, 'reestimated', k.run_id
FROM current_ranks k
JOIN (SELECT DISTINCT year, from_year FROM unit_mappings) m ON m.year = k.year
WHERE k.change_basis = 'reestimated';
COMMENT ON VIEW unit_series IS 'A unit''s series across years (chuỗi số liệu): each year''s own results on its own units, and the previous year re-estimated on a later year''s units (basis reestimated) so that the years compare: SELECT * FROM unit_series WHERE unit_code = ''68'' AND unit_year = 2025 ORDER BY measure, year';
COMMENT ON COLUMN unit_series.unit_code IS 'The unit (mã tỉnh) in the geography of unit_year';
COMMENT ON COLUMN unit_series.unit_year IS 'The year whose units the row is on (năm của đơn vị)';
COMMENT ON COLUMN unit_series.year IS 'The survey year the value estimates (năm khảo sát)';
COMMENT ON COLUMN unit_series.measure IS 'sipas, sipas_policy, sipas_service or par (par has no re-estimated rows: not comparable across the merger)';
COMMENT ON COLUMN unit_series.unit_name_vi IS 'Unit name in Vietnamese (tên đơn vị), NFC';
COMMENT ON COLUMN unit_series.unit_name_en IS 'Unit name in English';
COMMENT ON COLUMN unit_series.run_id IS 'The current run the row comes from (for re-estimated rows: the later year''s run)';
COMMENT ON COLUMN unit_series.value IS 'The estimate (%), own results or the previous year re-estimated on unit_year''s units';
COMMENT ON COLUMN unit_series.se IS 'Its design-based standard error (sai số chuẩn)';
COMMENT ON COLUMN unit_series.df IS 'Degrees of freedom (null on re-estimated rows: see the change in current_ranks)';
COMMENT ON COLUMN unit_series.rank_national IS 'National rank among unit_year''s units';
COMMENT ON COLUMN unit_series.basis IS 'results (the year''s own run) or reestimated (the previous year''s forms pooled on these units)';

CREATE OR REPLACE VIEW nation_series AS
SELECT unit_year, year, measure, avg(value) AS value, sqrt(sum(se * se)) / count(*) AS se, count(*) AS units, basis,
       'mean of ' || count(*) || ' units of ' || unit_year || ' (' || basis || ')' AS definition
FROM unit_series
WHERE value IS NOT NULL
GROUP BY unit_year, year, measure, basis;
COMMENT ON VIEW nation_series IS 'The national mean (toàn quốc) of every year on every geography: the mean of the units, so its definition changes with their number (2024: 63 provinces as computed then, and 34 units re-estimated): both are published, never mixed';
COMMENT ON COLUMN nation_series.unit_year IS 'The year whose units are averaged';
COMMENT ON COLUMN nation_series.year IS 'The survey year estimated';
COMMENT ON COLUMN nation_series.measure IS 'sipas, sipas_policy, sipas_service or par';
COMMENT ON COLUMN nation_series.value IS 'Mean of the units'' values (%)';
COMMENT ON COLUMN nation_series.se IS 'Its standard error: sqrt(sum se^2) / units (units are independent strata)';
COMMENT ON COLUMN nation_series.units IS 'How many units the mean is over';
COMMENT ON COLUMN nation_series.basis IS 'results or reestimated (see unit_series)';
COMMENT ON COLUMN nation_series.definition IS 'What the national figure is a mean of, in words';
