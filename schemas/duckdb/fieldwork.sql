-- sipas-pipeline result database: live fieldwork (khảo sát đang diễn ra), written by `sipas fieldwork` and the
-- Prefect deployment `fieldwork` after each batch it takes. Provisional (tạm tính) figures only: the annual
-- tables (runs, indicator_values, sipas_indices, par_points, par_totals, …) and the current_* views are never
-- written here. Each refresh replaces the year's rows of every fieldwork_* table (fieldwork_quarantine: the rows
-- of the batches the refresh took or changed), in one transaction.

CREATE TABLE IF NOT EXISTS fieldwork_status (
    year INTEGER NOT NULL, as_of DATE, refreshed_at TIMESTAMPTZ NOT NULL, provisional BOOLEAN NOT NULL,
    batches_taken BIGINT NOT NULL, batches_duplicate BIGINT NOT NULL, batches_superseded BIGINT NOT NULL,
    batches_unreadable BIGINT NOT NULL, forms_read BIGINT NOT NULL, forms_valid BIGINT NOT NULL,
    forms_quarantined BIGINT NOT NULL, coverage_citizen DOUBLE, coverage_official DOUBLE
);
COMMENT ON TABLE fieldwork_status IS 'Fieldwork status (tình hình khảo sát): one row per year in fieldwork, as of its latest batch';
COMMENT ON COLUMN fieldwork_status.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_status.as_of IS 'The latest form date taken so far inside the survey window (ngày cập nhật)';
COMMENT ON COLUMN fieldwork_status.refreshed_at IS 'When these fieldwork rows were written';
COMMENT ON COLUMN fieldwork_status.provisional IS 'Always true: figures during fieldwork are provisional (tạm tính), not the annual run';
COMMENT ON COLUMN fieldwork_status.batches_taken IS 'Batches whose forms count (the last version of each batch)';
COMMENT ON COLUMN fieldwork_status.batches_duplicate IS 'Files received again with the same bytes: not counted again';
COMMENT ON COLUMN fieldwork_status.batches_superseded IS 'Earlier versions of batches re-sent with fixes: their forms no longer count';
COMMENT ON COLUMN fieldwork_status.batches_unreadable IS 'Files that could not be read (see fieldwork_batches.note)';
COMMENT ON COLUMN fieldwork_status.forms_read IS 'Rows read from the batches that count';
COMMENT ON COLUMN fieldwork_status.forms_valid IS 'Valid forms (the season''s silver)';
COMMENT ON COLUMN fieldwork_status.forms_quarantined IS 'Quarantined rows of the batches that count';
COMMENT ON COLUMN fieldwork_status.coverage_citizen IS 'Valid citizens'' forms / target (methodology fieldwork.target_forms)';
COMMENT ON COLUMN fieldwork_status.coverage_official IS 'Valid officials'' forms / target';

CREATE TABLE IF NOT EXISTS fieldwork_batches (
    year INTEGER NOT NULL, seq INTEGER NOT NULL, source VARCHAR NOT NULL, batch_id VARCHAR NOT NULL, file VARCHAR NOT NULL,
    team VARCHAR, sha256 VARCHAR NOT NULL, taken_at TIMESTAMPTZ NOT NULL, fieldwork_date DATE, status VARCHAR NOT NULL,
    "read" BIGINT NOT NULL, valid BIGINT NOT NULL, quarantined BIGINT NOT NULL, quarantine_rate DOUBLE,
    supersedes INTEGER, superseded_by INTEGER, same_as INTEGER, note VARCHAR, reasons JSON
);
COMMENT ON TABLE fieldwork_batches IS 'Batches received during fieldwork (lô phiếu): one row per file taken, in the order taken';
COMMENT ON COLUMN fieldwork_batches.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_batches.seq IS 'Order in which the file was taken (1 = first)';
COMMENT ON COLUMN fieldwork_batches.source IS 'citizen (phiếu người dân) or official (phiếu cán bộ, công chức)';
COMMENT ON COLUMN fieldwork_batches.batch_id IS 'The batch: the file name without its extension (a re-sent batch keeps it)';
COMMENT ON COLUMN fieldwork_batches.file IS 'File name as received';
COMMENT ON COLUMN fieldwork_batches.team IS 'Field team (đội khảo sát), from the file name <YYYYMMDDTHHMM>_<team>_…';
COMMENT ON COLUMN fieldwork_batches.sha256 IS 'SHA-256 of the bytes read: a file is taken once per content';
COMMENT ON COLUMN fieldwork_batches.taken_at IS 'When the pipeline took the file';
COMMENT ON COLUMN fieldwork_batches.fieldwork_date IS 'The latest interview / submission date among its valid forms';
COMMENT ON COLUMN fieldwork_batches.status IS 'taken (its forms count), superseded (re-sent later), duplicate (same bytes again), unreadable';
COMMENT ON COLUMN fieldwork_batches."read" IS 'Rows read (= valid + quarantined)';
COMMENT ON COLUMN fieldwork_batches.valid IS 'Valid forms';
COMMENT ON COLUMN fieldwork_batches.quarantined IS 'Quarantined rows (fieldwork_quarantine has every reason)';
COMMENT ON COLUMN fieldwork_batches.quarantine_rate IS 'quarantined / read';
COMMENT ON COLUMN fieldwork_batches.supersedes IS 'seq of the earlier version of this batch it replaces';
COMMENT ON COLUMN fieldwork_batches.superseded_by IS 'seq of the later version that replaced it';
COMMENT ON COLUMN fieldwork_batches.same_as IS 'seq of the file with the same bytes (a duplicate)';
COMMENT ON COLUMN fieldwork_batches.note IS 'Why a file counts nothing (duplicate, unreadable)';
COMMENT ON COLUMN fieldwork_batches.reasons IS 'Quarantined rows per rule (JSON object rule -> rows)';

CREATE TABLE IF NOT EXISTS fieldwork_quarantine (
    year INTEGER NOT NULL, seq INTEGER NOT NULL, batch_id VARCHAR NOT NULL, source VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL, source_row BIGINT NOT NULL, form_id VARCHAR, province_code VARCHAR,
    "column" VARCHAR, rule VARCHAR NOT NULL, value VARCHAR, message VARCHAR NOT NULL
);
COMMENT ON TABLE fieldwork_quarantine IS 'Quarantined rows of fieldwork batches (dòng bị cách ly), one row per reason: every reason of every row';
COMMENT ON COLUMN fieldwork_quarantine.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_quarantine.seq IS 'The batch (fieldwork_batches.seq)';
COMMENT ON COLUMN fieldwork_quarantine.batch_id IS 'The batch name';
COMMENT ON COLUMN fieldwork_quarantine.source IS 'citizen or official';
COMMENT ON COLUMN fieldwork_quarantine.source_file IS 'The file as the annual run would name it (<source folder>/<file>)';
COMMENT ON COLUMN fieldwork_quarantine.source_row IS 'Row of the file as a person counts it (header = 1)';
COMMENT ON COLUMN fieldwork_quarantine.form_id IS 'The form''s key';
COMMENT ON COLUMN fieldwork_quarantine.province_code IS 'The province code as read (may be the wrong one)';
COMMENT ON COLUMN fieldwork_quarantine."column" IS 'The column whose rule broke (null: the whole row)';
COMMENT ON COLUMN fieldwork_quarantine.rule IS 'The validation rule (the annual run''s)';
COMMENT ON COLUMN fieldwork_quarantine.value IS 'The value as keyed';
COMMENT ON COLUMN fieldwork_quarantine.message IS 'What is wrong, in words';

CREATE TABLE IF NOT EXISTS fieldwork_progress (
    year INTEGER NOT NULL, as_of DATE, source VARCHAR NOT NULL, level VARCHAR NOT NULL, unit_code VARCHAR,
    province_code VARCHAR, target BIGINT, received BIGINT NOT NULL, valid BIGINT NOT NULL, quarantined BIGINT NOT NULL,
    coverage DOUBLE, expected DOUBLE, behind_schedule BOOLEAN, last_batch_date DATE, batches BIGINT
);
COMMENT ON TABLE fieldwork_progress IS 'Fieldwork progress (tiến độ khảo sát) against the target sample: citizens per province, commune and village; officials per province and respondent type';
COMMENT ON COLUMN fieldwork_progress.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_progress.as_of IS 'The latest form date taken so far inside the survey window';
COMMENT ON COLUMN fieldwork_progress.source IS 'citizen or official';
COMMENT ON COLUMN fieldwork_progress.level IS 'province, commune, village (citizens) or respondent_type (officials)';
COMMENT ON COLUMN fieldwork_progress.unit_code IS 'Code of the unit at its level (a code as read when it is not in the frame)';
COMMENT ON COLUMN fieldwork_progress.province_code IS 'The unit''s province';
COMMENT ON COLUMN fieldwork_progress.target IS 'Target forms (chỉ tiêu mẫu): methodology fieldwork.target_forms over the sampled villages (citizens) or the provinces (officials); null where the design sets none';
COMMENT ON COLUMN fieldwork_progress.received IS 'Rows received (read) in the batches that count';
COMMENT ON COLUMN fieldwork_progress.valid IS 'Valid forms';
COMMENT ON COLUMN fieldwork_progress.quarantined IS 'Quarantined rows';
COMMENT ON COLUMN fieldwork_progress.coverage IS 'valid / target';
COMMENT ON COLUMN fieldwork_progress.expected IS 'Forms expected by as_of: target x share of the survey window elapsed';
COMMENT ON COLUMN fieldwork_progress.behind_schedule IS 'Province behind schedule (chậm tiến độ): valid < methodology fieldwork.behind_schedule x expected';
COMMENT ON COLUMN fieldwork_progress.last_batch_date IS 'Province: the latest form date of its last batch';
COMMENT ON COLUMN fieldwork_progress.batches IS 'Province: batches that brought its forms';

CREATE TABLE IF NOT EXISTS fieldwork_indicators (
    year INTEGER NOT NULL, as_of DATE, provisional BOOLEAN NOT NULL, unit_level VARCHAR NOT NULL, unit_code VARCHAR NOT NULL,
    indicator_id VARCHAR NOT NULL, value DOUBLE, se DOUBLE, ci_low DOUBLE, ci_high DOUBLE, df DOUBLE, deff DOUBLE,
    n_eff DOUBLE, small_sample BOOLEAN, numerator DOUBLE, denominator DOUBLE, n BIGINT, coverage DOUBLE
);
COMMENT ON TABLE fieldwork_indicators IS 'Provisional indicator values (giá trị chỉ tiêu tạm tính) from the forms so far, with the annual run''s design-based se and intervals';
COMMENT ON COLUMN fieldwork_indicators.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_indicators.as_of IS 'Provisional as of this form date';
COMMENT ON COLUMN fieldwork_indicators.provisional IS 'Always true: provisional (tạm tính)';
COMMENT ON COLUMN fieldwork_indicators.unit_level IS 'province, region or nation';
COMMENT ON COLUMN fieldwork_indicators.unit_code IS 'Province code, region code or VN';
COMMENT ON COLUMN fieldwork_indicators.indicator_id IS 'Indicator (chỉ tiêu)';
COMMENT ON COLUMN fieldwork_indicators.value IS 'Per cent (weighted), as the annual indicator_values';
COMMENT ON COLUMN fieldwork_indicators.se IS 'Design-based standard error (Taylor linearisation), percentage points';
COMMENT ON COLUMN fieldwork_indicators.ci_low IS 'Lower bound of the Korn-Graubard interval (methodology confidence)';
COMMENT ON COLUMN fieldwork_indicators.ci_high IS 'Upper bound of the Korn-Graubard interval';
COMMENT ON COLUMN fieldwork_indicators.df IS 'Design degrees of freedom (PSUs - strata)';
COMMENT ON COLUMN fieldwork_indicators.deff IS 'Design effect';
COMMENT ON COLUMN fieldwork_indicators.n_eff IS 'Effective sample size';
COMMENT ON COLUMN fieldwork_indicators.small_sample IS 'n or effective n below methodology small_sample';
COMMENT ON COLUMN fieldwork_indicators.numerator IS 'Weighted counted answers';
COMMENT ON COLUMN fieldwork_indicators.denominator IS 'Weighted answers';
COMMENT ON COLUMN fieldwork_indicators.n IS 'Answers';
COMMENT ON COLUMN fieldwork_indicators.coverage IS 'Valid citizens'' forms / target in the unit';

CREATE TABLE IF NOT EXISTS fieldwork_sipas (
    year INTEGER NOT NULL, as_of DATE, provisional BOOLEAN NOT NULL, unit_level VARCHAR NOT NULL, unit_code VARCHAR NOT NULL,
    level VARCHAR NOT NULL, node VARCHAR NOT NULL, value DOUBLE, se DOUBLE, ci_low DOUBLE, ci_high DOUBLE, df DOUBLE,
    small_sample BOOLEAN, n BIGINT, coverage DOUBLE
);
COMMENT ON TABLE fieldwork_sipas IS 'Provisional SIPAS (Chỉ số SIPAS tạm tính) at every level of its tree, with se and t intervals, from the forms so far';
COMMENT ON COLUMN fieldwork_sipas.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_sipas.as_of IS 'Provisional as of this form date';
COMMENT ON COLUMN fieldwork_sipas.provisional IS 'Always true: provisional (tạm tính)';
COMMENT ON COLUMN fieldwork_sipas.unit_level IS 'province, region or nation';
COMMENT ON COLUMN fieldwork_sipas.unit_code IS 'Province code, region code or VN';
COMMENT ON COLUMN fieldwork_sipas.level IS 'sipas, part or element';
COMMENT ON COLUMN fieldwork_sipas.node IS 'SIPAS, a part or an element / policy group';
COMMENT ON COLUMN fieldwork_sipas.value IS 'Index value (0-100), as the annual sipas_indices';
COMMENT ON COLUMN fieldwork_sipas.se IS 'Design-based standard error of the tree''s linearised score';
COMMENT ON COLUMN fieldwork_sipas.ci_low IS 'Lower bound of the t(df) interval';
COMMENT ON COLUMN fieldwork_sipas.ci_high IS 'Upper bound of the t(df) interval';
COMMENT ON COLUMN fieldwork_sipas.df IS 'Satterthwaite degrees of freedom';
COMMENT ON COLUMN fieldwork_sipas.small_sample IS 'n below methodology small_sample';
COMMENT ON COLUMN fieldwork_sipas.n IS 'Citizens'' forms';
COMMENT ON COLUMN fieldwork_sipas.coverage IS 'Valid citizens'' forms / target in the unit';

CREATE TABLE IF NOT EXISTS fieldwork_par_survey (
    year INTEGER NOT NULL, as_of DATE, provisional BOOLEAN NOT NULL, province_code VARCHAR NOT NULL,
    subcriterion_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, max_points DOUBLE, points DOUBLE, se DOUBLE, df DOUBLE,
    ci_low DOUBLE, ci_high DOUBLE, coverage DOUBLE
);
COMMENT ON TABLE fieldwork_par_survey IS 'Provisional PAR INDEX survey points (điểm điều tra xã hội học tạm tính) per province: the officials'' and citizens'' sub-criteria and their total (subcriterion_id *), with se and t intervals';
COMMENT ON COLUMN fieldwork_par_survey.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_par_survey.as_of IS 'Provisional as of this form date';
COMMENT ON COLUMN fieldwork_par_survey.provisional IS 'Always true: provisional (tạm tính)';
COMMENT ON COLUMN fieldwork_par_survey.province_code IS 'Province';
COMMENT ON COLUMN fieldwork_par_survey.subcriterion_id IS 'PAR sub-criterion, or * for the survey points together';
COMMENT ON COLUMN fieldwork_par_survey.kind IS 'survey_official, survey_citizen, or survey (the total)';
COMMENT ON COLUMN fieldwork_par_survey.max_points IS 'Maximum points';
COMMENT ON COLUMN fieldwork_par_survey.points IS 'Points, as the annual par_points (the total: par_totals.survey_points)';
COMMENT ON COLUMN fieldwork_par_survey.se IS 'Design-based standard error';
COMMENT ON COLUMN fieldwork_par_survey.df IS 'Degrees of freedom (officials: n - 1; citizens: PSUs - strata; total: Welch)';
COMMENT ON COLUMN fieldwork_par_survey.ci_low IS 'Lower bound of the t(df) interval';
COMMENT ON COLUMN fieldwork_par_survey.ci_high IS 'Upper bound of the t(df) interval';
COMMENT ON COLUMN fieldwork_par_survey.coverage IS 'Valid forms / target in the province (officials'' for their sub-criteria, citizens'' otherwise; the lower of the two for the total)';

CREATE TABLE IF NOT EXISTS fieldwork_units (
    year INTEGER NOT NULL, province_code VARCHAR NOT NULL, name_vi VARCHAR NOT NULL, name_en VARCHAR, region_code VARCHAR
);
COMMENT ON TABLE fieldwork_units IS 'Provinces of the fieldwork year (tỉnh), with names (from the methodology)';
COMMENT ON COLUMN fieldwork_units.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_units.province_code IS 'Province code';
COMMENT ON COLUMN fieldwork_units.name_vi IS 'Name in Vietnamese';
COMMENT ON COLUMN fieldwork_units.name_en IS 'Name in English';
COMMENT ON COLUMN fieldwork_units.region_code IS 'Region';

CREATE OR REPLACE VIEW fieldwork_provinces AS
SELECT u.year, u.province_code, u.name_vi, u.name_en, u.region_code, s.as_of, s.value AS sipas, s.se AS sipas_se,
       s.ci_low AS sipas_ci_low, s.ci_high AS sipas_ci_high, c.valid AS citizen_valid, c.target AS citizen_target,
       c.coverage AS citizen_coverage, c.behind_schedule AS citizen_behind, o.valid AS official_valid,
       o.target AS official_target, o.coverage AS official_coverage, o.behind_schedule AS official_behind,
       p.points AS par_survey_points, p.se AS par_survey_se, c.last_batch_date
FROM fieldwork_units u
LEFT JOIN fieldwork_sipas s ON s.year = u.year AND s.unit_level = 'province' AND s.unit_code = u.province_code AND s.level = 'sipas'
LEFT JOIN fieldwork_progress c ON c.year = u.year AND c.source = 'citizen' AND c.level = 'province' AND c.unit_code = u.province_code
LEFT JOIN fieldwork_progress o ON o.year = u.year AND o.source = 'official' AND o.level = 'province' AND o.unit_code = u.province_code
LEFT JOIN fieldwork_par_survey p ON p.year = u.year AND p.province_code = u.province_code AND p.subcriterion_id = '*';
COMMENT ON VIEW fieldwork_provinces IS 'Fieldwork per province (tỉnh, tạm tính): provisional SIPAS with interval, PAR survey points, progress against target, behind-schedule flags';
COMMENT ON COLUMN fieldwork_provinces.year IS 'Survey year';
COMMENT ON COLUMN fieldwork_provinces.province_code IS 'Province code';
COMMENT ON COLUMN fieldwork_provinces.name_vi IS 'Name in Vietnamese';
COMMENT ON COLUMN fieldwork_provinces.name_en IS 'Name in English';
COMMENT ON COLUMN fieldwork_provinces.region_code IS 'Region';
COMMENT ON COLUMN fieldwork_provinces.as_of IS 'Provisional as of this form date';
COMMENT ON COLUMN fieldwork_provinces.sipas IS 'Provisional SIPAS (0-100)';
COMMENT ON COLUMN fieldwork_provinces.sipas_se IS 'Its design-based standard error';
COMMENT ON COLUMN fieldwork_provinces.sipas_ci_low IS 'Lower bound of its t(df) interval';
COMMENT ON COLUMN fieldwork_provinces.sipas_ci_high IS 'Upper bound of its t(df) interval';
COMMENT ON COLUMN fieldwork_provinces.citizen_valid IS 'Valid citizens'' forms';
COMMENT ON COLUMN fieldwork_provinces.citizen_target IS 'Target citizens'' forms';
COMMENT ON COLUMN fieldwork_provinces.citizen_coverage IS 'Valid / target (citizens)';
COMMENT ON COLUMN fieldwork_provinces.citizen_behind IS 'Citizens'' survey behind schedule';
COMMENT ON COLUMN fieldwork_provinces.official_valid IS 'Valid officials'' forms';
COMMENT ON COLUMN fieldwork_provinces.official_target IS 'Target officials'' forms';
COMMENT ON COLUMN fieldwork_provinces.official_coverage IS 'Valid / target (officials)';
COMMENT ON COLUMN fieldwork_provinces.official_behind IS 'Officials'' survey behind schedule';
COMMENT ON COLUMN fieldwork_provinces.par_survey_points IS 'Provisional PAR survey points together (of 32)';
COMMENT ON COLUMN fieldwork_provinces.par_survey_se IS 'Their standard error';
COMMENT ON COLUMN fieldwork_provinces.last_batch_date IS 'The latest form date of the province''s last citizens'' batch';
