-- sipas-pipeline result database: tables.
-- Run by the publish step inside its transaction on every publish (idempotent: CREATE ... IF NOT EXISTS),
-- followed by the COMMENT ON statements below, so comments are always present.
-- Keys: every fact row carries run_id and year; units are (unit_level, unit_code) for province / region / nation.

-- The file itself (tệp) -----------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS schema_info (
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR,
    change VARCHAR NOT NULL,
    schema_sha256 VARCHAR
);
COMMENT ON TABLE schema_info IS 'Schema version of this file (phiên bản lược đồ): one row per creation or migration; the file is at the highest version; sipas-pipeline migrates an older file when the change only adds tables or nullable columns';
COMMENT ON COLUMN schema_info.version IS 'Schema version the file was brought to (1 = the first files, without this table)';
COMMENT ON COLUMN schema_info.applied_at IS 'When the file was created or migrated';
COMMENT ON COLUMN schema_info.run_id IS 'The run that created or migrated the file';
COMMENT ON COLUMN schema_info.change IS 'What changed: created, migrated from an older version, columns added';
COMMENT ON COLUMN schema_info.schema_sha256 IS 'On the latest row: SHA-256 of the schema files last applied and of the tables, views and comments they made (a publish re-applies them only when either changed)';

-- Dimensions (kích thước) --------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS methodology_versions (
    year INTEGER NOT NULL,
    version VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    files JSON NOT NULL,
    first_run_id VARCHAR NOT NULL,
    PRIMARY KEY (year, content_hash)
);
COMMENT ON TABLE methodology_versions IS 'Methodology versions (phiên bản phương pháp luận): one row per distinct set of methodology files a run used';
COMMENT ON COLUMN methodology_versions.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN methodology_versions.version IS 'Version label from methodology.yaml';
COMMENT ON COLUMN methodology_versions.content_hash IS 'SHA-256 over the methodology files of the year, in file-name order';
COMMENT ON COLUMN methodology_versions.files IS 'Each methodology file with its own SHA-256 (JSON object file -> hash)';
COMMENT ON COLUMN methodology_versions.first_run_id IS 'The first run published with this methodology version';

CREATE TABLE IF NOT EXISTS units (
    year INTEGER NOT NULL,
    unit_level VARCHAR NOT NULL,
    unit_code VARCHAR NOT NULL,
    name_vi VARCHAR NOT NULL,
    name_en VARCHAR NOT NULL,
    region_code VARCHAR,
    name_sort VARCHAR,
    PRIMARY KEY (year, unit_level, unit_code)
);
COMMENT ON TABLE units IS 'Administrative units (đơn vị hành chính): the provinces (tỉnh/thành phố), the regions (vùng) and the nation (toàn quốc) of a year';
COMMENT ON COLUMN units.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN units.unit_level IS 'Level of the unit: province (tỉnh), region (vùng) or nation (toàn quốc)';
COMMENT ON COLUMN units.unit_code IS 'Unit code: the two-digit province code (mã tỉnh), the region code, or VN for the nation';
COMMENT ON COLUMN units.name_vi IS 'Name in Vietnamese (tên tiếng Việt), NFC';
COMMENT ON COLUMN units.name_en IS 'Name in English (tên tiếng Anh)';
COMMENT ON COLUMN units.name_sort IS 'Sort key of name_vi in Vietnamese alphabetical order (khóa sắp xếp): letters a ă â b c d đ e ê ... then tones; ORDER BY name_sort, not name_vi (byte order)';
COMMENT ON COLUMN units.region_code IS 'Region (vùng) a province belongs to; the region''s own code on region rows; null for the nation';

-- The units of a year that changed its geography, mapped from the previous year's (issue #13: 63 -> 34 provinces).
CREATE TABLE IF NOT EXISTS unit_mappings (
    year INTEGER NOT NULL,
    from_year INTEGER NOT NULL,
    from_code VARCHAR NOT NULL,
    from_name VARCHAR NOT NULL,
    to_code VARCHAR NOT NULL,
    to_name VARCHAR NOT NULL,
    PRIMARY KEY (year, from_code)
);
COMMENT ON TABLE unit_mappings IS 'Which unit of a year each province of the previous year became (sáp nhập tỉnh): old -> new, from the year''s unit_mapping.csv';
COMMENT ON COLUMN unit_mappings.year IS 'The year whose units the mapping leads to (năm của đơn vị mới)';
COMMENT ON COLUMN unit_mappings.from_year IS 'The year of the old units';
COMMENT ON COLUMN unit_mappings.from_code IS 'Old province code (mã tỉnh cũ)';
COMMENT ON COLUMN unit_mappings.from_name IS 'Old province name (tên tỉnh cũ), Vietnamese, NFC';
COMMENT ON COLUMN unit_mappings.to_code IS 'The unit it became (mã tỉnh mới)';
COMMENT ON COLUMN unit_mappings.to_name IS 'Name of the unit it became (tên tỉnh mới)';

CREATE TABLE IF NOT EXISTS indicators (
    year INTEGER NOT NULL,
    indicator_id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    part VARCHAR,
    element VARCHAR,
    question_id VARCHAR NOT NULL,
    counting_codes VARCHAR NOT NULL,
    direction INTEGER NOT NULL,
    in_index BOOLEAN NOT NULL,
    weight DOUBLE,
    label_vi VARCHAR NOT NULL,
    label_en VARCHAR NOT NULL,
    PRIMARY KEY (year, indicator_id)
);
COMMENT ON TABLE indicators IS 'SIPAS indicators (chỉ tiêu): 42 assessment (đánh giá), 51 satisfaction (hài lòng), 10 expectation (mong đợi)';
COMMENT ON COLUMN indicators.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN indicators.indicator_id IS 'Indicator id (mã chỉ tiêu), as in schemas/<year>/indicators.csv';
COMMENT ON COLUMN indicators.type IS 'assessment (đánh giá), satisfaction (hài lòng) or expectation (mong đợi)';
COMMENT ON COLUMN indicators.part IS 'Part of the SIPAS tree: policy (chính sách) or service (dịch vụ hành chính công)';
COMMENT ON COLUMN indicators.element IS 'Element (yếu tố) of the SIPAS tree the indicator belongs to';
COMMENT ON COLUMN indicators.question_id IS 'Question (câu hỏi) of the citizens'' form the indicator is computed from';
COMMENT ON COLUMN indicators.counting_codes IS 'Answer codes counted in the numerator, separated by |';
COMMENT ON COLUMN indicators.direction IS '1 when a higher value is better, -1 when a lower value is better';
COMMENT ON COLUMN indicators.in_index IS 'True when the indicator enters the SIPAS index (satisfaction indicators of the tree)';
COMMENT ON COLUMN indicators.weight IS 'Weight of the indicator within its element (trọng số)';
COMMENT ON COLUMN indicators.label_vi IS 'Label in Vietnamese (nhãn tiếng Việt)';
COMMENT ON COLUMN indicators.label_en IS 'Label in English (nhãn tiếng Anh)';

CREATE TABLE IF NOT EXISTS sipas_structure (
    year INTEGER NOT NULL,
    level VARCHAR NOT NULL,
    node VARCHAR NOT NULL,
    parent VARCHAR,
    weight DOUBLE NOT NULL,
    label_vi VARCHAR NOT NULL,
    label_en VARCHAR NOT NULL,
    PRIMARY KEY (year, level, node)
);
COMMENT ON TABLE sipas_structure IS 'The SIPAS tree (cấu trúc chỉ số SIPAS): its parts and elements with weights';
COMMENT ON COLUMN sipas_structure.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN sipas_structure.level IS 'Level of the tree: sipas, part (phần) or element (yếu tố)';
COMMENT ON COLUMN sipas_structure.node IS 'Node of the tree at that level (the part or element code; SIPAS for the whole index)';
COMMENT ON COLUMN sipas_structure.parent IS 'The node one level up (an element''s part; SIPAS for a part; null for the index)';
COMMENT ON COLUMN sipas_structure.weight IS 'Weight of the node within its parent (trọng số)';
COMMENT ON COLUMN sipas_structure.label_vi IS 'Label in Vietnamese (nhãn tiếng Việt)';
COMMENT ON COLUMN sipas_structure.label_en IS 'Label in English (nhãn tiếng Anh)';

CREATE TABLE IF NOT EXISTS par_structure (
    year INTEGER NOT NULL,
    level VARCHAR NOT NULL,
    node VARCHAR NOT NULL,
    criterion_id VARCHAR,
    field_id VARCHAR NOT NULL,
    kind VARCHAR,
    source VARCHAR,
    max_points DOUBLE,
    label_vi VARCHAR NOT NULL,
    label_en VARCHAR NOT NULL,
    PRIMARY KEY (year, level, node)
);
COMMENT ON TABLE par_structure IS 'PAR INDEX structure (cấu trúc Chỉ số CCHC): fields (lĩnh vực), criteria (tiêu chí), sub-criteria (tiêu chí thành phần) with maximum points';
COMMENT ON COLUMN par_structure.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN par_structure.level IS 'field (lĩnh vực), criterion (tiêu chí) or subcriterion (tiêu chí thành phần)';
COMMENT ON COLUMN par_structure.node IS 'Id of the field, criterion or sub-criterion';
COMMENT ON COLUMN par_structure.criterion_id IS 'Criterion (tiêu chí) a sub-criterion belongs to; the criterion itself on criterion rows';
COMMENT ON COLUMN par_structure.field_id IS 'Field (lĩnh vực) the node belongs to';
COMMENT ON COLUMN par_structure.kind IS 'How a sub-criterion is scored: appraisal (thẩm định), survey_official (điều tra xã hội học cán bộ) or survey_citizen (SIPAS)';
COMMENT ON COLUMN par_structure.source IS 'Where a survey sub-criterion''s score comes from (a part, element or indicator of SIPAS, or a part of the officials'' form)';
COMMENT ON COLUMN par_structure.max_points IS 'Maximum points (điểm tối đa); for a criterion the sum of its sub-criteria';
COMMENT ON COLUMN par_structure.label_vi IS 'Label in Vietnamese (nhãn tiếng Việt)';
COMMENT ON COLUMN par_structure.label_en IS 'Label in English (nhãn tiếng Anh)';

-- The run record (lần chạy) -------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    year INTEGER NOT NULL,
    status VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    parameters JSON NOT NULL,
    flow_run_id VARCHAR,
    methodology_hash VARCHAR NOT NULL,
    code_version VARCHAR NOT NULL,
    inputs STRUCT(source VARCHAR, file VARCHAR, sha256 VARCHAR, batch_id VARCHAR,
                  "read" BIGINT, valid BIGINT, quarantined BIGINT)[],
    accounting STRUCT(source VARCHAR, "read" BIGINT, valid BIGINT, quarantined BIGINT, unreadable_files BIGINT)[],
    unreadable_files STRUCT(source VARCHAR, file VARCHAR, reason VARCHAR)[],
    ignored_files STRUCT(source VARCHAR, file VARCHAR, reason VARCHAR)[],
    timings STRUCT(stage VARCHAR, seconds DOUBLE)[],
    results_hash VARCHAR,
    error VARCHAR,
    libraries STRUCT(name VARCHAR, version VARCHAR)[],
    "trigger" VARCHAR
);
-- a database made before runs recorded ignored files (issue #12) gets the column here
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ignored_files STRUCT(source VARCHAR, file VARCHAR, reason VARCHAR)[];
COMMENT ON TABLE runs IS 'One row per pipeline run (lần chạy): parameters, inputs with content hashes, row accounting, timings, status';
COMMENT ON COLUMN runs.run_id IS 'Run id (mã lần chạy): year, UTC start time and a short random suffix';
COMMENT ON COLUMN runs.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN runs.status IS 'published (the run''s results are in the fact tables), refused (a user''s mistake stopped it: its inputs, corrections or methodology; nothing published) or failed (an error that is not the user''s; nothing published)';
COMMENT ON COLUMN runs.started_at IS 'When the run started';
COMMENT ON COLUMN runs.finished_at IS 'When the run was published or failed';
COMMENT ON COLUMN runs.parameters IS 'The run''s parameters (raw folder, database, correction files, trigger, the methodology''s design block: rank seed and draws, confidence) as JSON';
COMMENT ON COLUMN runs.flow_run_id IS 'Prefect flow run id, when the run went through Prefect';
COMMENT ON COLUMN runs.methodology_hash IS 'Content hash of the methodology files used (see methodology_versions)';
COMMENT ON COLUMN runs.code_version IS 'sipas-pipeline version (and git commit when known) that computed the run';
COMMENT ON COLUMN runs.inputs IS 'Each input file read: source, file, SHA-256 of its content, batch, rows read / valid / quarantined';
COMMENT ON COLUMN runs.accounting IS 'Row accounting per source: rows read = valid + quarantined; unreadable files counted by file';
COMMENT ON COLUMN runs.unreadable_files IS 'Files that could not be read at all, with the reason';
COMMENT ON COLUMN runs.ignored_files IS 'Files under a source folder that were not read, with why (tệp bỏ qua): in a subfolder, an unsupported type, hidden or lock files';
COMMENT ON COLUMN runs.timings IS 'Seconds spent per stage (ingest, validate, corrections, compute, publish)';
COMMENT ON COLUMN runs.results_hash IS 'SHA-256 over the run''s result tables: equal inputs and methodology give an equal hash';
COMMENT ON COLUMN runs.error IS 'Why a refused or failed run stopped, in one line';
COMMENT ON COLUMN runs.libraries IS 'Versions of Python and the core libraries that computed the run (polars, pyarrow, pandera, prefect, duckdb, numpy, scipy; thư viện), installed from requirements.lock';
COMMENT ON COLUMN runs."trigger" IS 'What started the run, as Prefect knows it: schedule (a deployment''s schedule), manual (a deployment run by someone: UI, prefect deployment run, the API) or command (sipas run)';

-- Facts (kết quả), keyed by run --------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS indicator_values (
    run_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    unit_level VARCHAR NOT NULL,
    unit_code VARCHAR NOT NULL,
    indicator_id VARCHAR NOT NULL,
    value DOUBLE,
    numerator DOUBLE,
    denominator DOUBLE,
    n BIGINT,
    se DOUBLE,
    incomplete_reason VARCHAR,
    ci_low DOUBLE,
    ci_high DOUBLE,
    df DOUBLE,
    deff DOUBLE,
    n_eff DOUBLE,
    small_sample BOOLEAN,
    reliability VARCHAR,
    reliability_reason VARCHAR,
    se_stabilised DOUBLE,
    ci_low_stabilised DOUBLE,
    ci_high_stabilised DOUBLE,
    df_stabilised DOUBLE,
    PRIMARY KEY (run_id, unit_level, unit_code, indicator_id)
);
COMMENT ON TABLE indicator_values IS 'Indicator values (giá trị chỉ tiêu) per unit: weighted percentage with its numerator, denominator, respondents and standard error';
COMMENT ON COLUMN indicator_values.run_id IS 'Run id (mã lần chạy), see runs';
COMMENT ON COLUMN indicator_values.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN indicator_values.unit_level IS 'Level of the unit: province (tỉnh), region (vùng) or nation (toàn quốc)';
COMMENT ON COLUMN indicator_values.unit_code IS 'Unit code: the two-digit province code (mã tỉnh), the region code, or VN for the nation';
COMMENT ON COLUMN indicator_values.indicator_id IS 'Indicator id (mã chỉ tiêu), see indicators';
COMMENT ON COLUMN indicator_values.value IS 'Percentage 0-100 (tỷ lệ %): 100 x numerator / denominator for a province; the mean of provinces for a region or the nation';
COMMENT ON COLUMN indicator_values.numerator IS 'Weighted count of answers with a counting code (tử số)';
COMMENT ON COLUMN indicator_values.denominator IS 'Weighted count of valid answers, "don''t know" excluded (mẫu số)';
COMMENT ON COLUMN indicator_values.n IS 'Number of respondents with a valid answer (số người trả lời)';
COMMENT ON COLUMN indicator_values.incomplete_reason IS 'Why a province has no value (thiếu dữ liệu): what its inputs lack (published with --allow-incomplete); null when complete. On region and nation rows: the provinces their mean leaves out';
COMMENT ON COLUMN indicator_values.se IS 'Standard error in percentage points (sai số chuẩn): design-based, Taylor linearisation over the strata and communes (PSUs) of the citizens'' sample with weights, with-replacement approximation; region and nation: sqrt(sum of province variances) / k (independent provinces)';
COMMENT ON COLUMN indicator_values.ci_low IS 'Lower bound of the 95% confidence interval (khoảng tin cậy), percent: Korn-Graubard (Clopper-Pearson with the effective sample size and t(df)), inside 0-100 and never zero-width';
COMMENT ON COLUMN indicator_values.ci_high IS 'Upper bound of the 95% confidence interval (khoảng tin cậy), percent, same method as ci_low';
COMMENT ON COLUMN indicator_values.df IS 'Design degrees of freedom (bậc tự do): sampled communes (PSUs) minus strata of the unit, summed over provinces for a region or the nation; the t quantile of the interval uses it';
COMMENT ON COLUMN indicator_values.deff IS 'Design effect (hệ số thiết kế): design variance / variance of a simple random sample of the same n, p(1-p)/n; how much clustering and weighting inflate the variance; null at 0% or 100%';
COMMENT ON COLUMN indicator_values.n_eff IS 'Effective sample size (cỡ mẫu hiệu dụng): n / deff = p(1-p) / variance; n at 0% or 100%';
COMMENT ON COLUMN indicator_values.small_sample IS 'Small sample (mẫu nhỏ): n or n_eff below the methodology''s threshold (design.small_sample, 30): read the value with care';

CREATE TABLE IF NOT EXISTS sipas_indices (
    run_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    unit_level VARCHAR NOT NULL,
    unit_code VARCHAR NOT NULL,
    level VARCHAR NOT NULL,
    node VARCHAR NOT NULL,
    value DOUBLE,
    n BIGINT,
    se DOUBLE,
    incomplete_reason VARCHAR,
    ci_low DOUBLE,
    ci_high DOUBLE,
    df DOUBLE,
    deff DOUBLE,
    n_eff DOUBLE,
    small_sample BOOLEAN,
    reliability VARCHAR,
    reliability_reason VARCHAR,
    se_stabilised DOUBLE,
    ci_low_stabilised DOUBLE,
    ci_high_stabilised DOUBLE,
    df_stabilised DOUBLE,
    PRIMARY KEY (run_id, unit_level, unit_code, level, node)
);
COMMENT ON TABLE sipas_indices IS 'SIPAS index (Chỉ số hài lòng về sự phục vụ hành chính) at every level of its tree: elements, parts and the index';
COMMENT ON COLUMN sipas_indices.run_id IS 'Run id (mã lần chạy), see runs';
COMMENT ON COLUMN sipas_indices.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN sipas_indices.unit_level IS 'Level of the unit: province (tỉnh), region (vùng) or nation (toàn quốc)';
COMMENT ON COLUMN sipas_indices.unit_code IS 'Unit code: the two-digit province code (mã tỉnh), the region code, or VN for the nation';
COMMENT ON COLUMN sipas_indices.level IS 'Level of the tree: element (yếu tố), part (phần) or sipas (the index)';
COMMENT ON COLUMN sipas_indices.node IS 'Node of the tree (see sipas_structure)';
COMMENT ON COLUMN sipas_indices.value IS 'Index value 0-100 (giá trị chỉ số, %)';
COMMENT ON COLUMN sipas_indices.incomplete_reason IS 'Why a province has no value (thiếu dữ liệu): what its inputs lack (published with --allow-incomplete); null when complete. On region and nation rows: the provinces their mean leaves out';
COMMENT ON COLUMN sipas_indices.n IS 'Citizens'' forms of the unit (số phiếu)';
COMMENT ON COLUMN sipas_indices.se IS 'Standard error in percentage points (sai số chuẩn): design-based, the tree linearised as a whole (the same combination of the indicators'' linearised scores, so correlations between indicators count), Taylor linearisation over the strata and communes (PSUs) of the citizens'' sample with weights, with-replacement approximation; region and nation: sqrt(sum of province variances) / k (independent provinces)';
COMMENT ON COLUMN sipas_indices.ci_low IS 'Lower bound of the 95% confidence interval (khoảng tin cậy), percent: value - t(df) x se, clipped to 0-100';
COMMENT ON COLUMN sipas_indices.ci_high IS 'Upper bound of the 95% confidence interval (khoảng tin cậy), percent, same method as ci_low';
COMMENT ON COLUMN sipas_indices.df IS 'Design degrees of freedom (bậc tự do) of the composite: the Satterthwaite effective df of its stratified variance, (sum of the strata''s variances)^2 / sum(variance^2 / (PSUs - 1)), at most sampled communes (PSUs) minus strata (fractional); summed over provinces for a region or the nation; the t quantile of the interval uses it';
COMMENT ON COLUMN sipas_indices.deff IS 'Design effect: null for tree nodes (a composite of indicators has no single simple-random-sampling reference)';
COMMENT ON COLUMN sipas_indices.n_eff IS 'Effective sample size: null for tree nodes (see deff)';
COMMENT ON COLUMN sipas_indices.small_sample IS 'Small sample (mẫu nhỏ): n below the methodology''s threshold (design.small_sample, 30): read the value with care';

CREATE TABLE IF NOT EXISTS par_points (
    run_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    province_code VARCHAR NOT NULL,
    level VARCHAR NOT NULL,
    node VARCHAR NOT NULL,
    points DOUBLE NOT NULL,
    max_points DOUBLE NOT NULL,
    self_points DOUBLE,
    se DOUBLE,
    PRIMARY KEY (run_id, province_code, level, node)
);
COMMENT ON TABLE par_points IS 'PAR INDEX points (điểm Chỉ số CCHC) per province at sub-criterion, criterion and field level';
COMMENT ON COLUMN par_points.run_id IS 'Run id (mã lần chạy), see runs';
COMMENT ON COLUMN par_points.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN par_points.province_code IS 'Two-digit province code (mã tỉnh)';
COMMENT ON COLUMN par_points.level IS 'field (lĩnh vực), criterion (tiêu chí) or subcriterion (tiêu chí thành phần)';
COMMENT ON COLUMN par_points.node IS 'Id of the field, criterion or sub-criterion (see par_structure)';
COMMENT ON COLUMN par_points.points IS 'Points obtained (điểm đạt được)';
COMMENT ON COLUMN par_points.max_points IS 'Maximum points (điểm tối đa)';
COMMENT ON COLUMN par_points.se IS 'Standard error of survey sub-criterion points (sai số chuẩn): officials'' points max/4 x se of the mean rating (each official a cluster, simple random sample per province); citizens'' points max/100 x se of the SIPAS result (design-based); null for appraisal points and for criteria and fields';
COMMENT ON COLUMN par_points.self_points IS 'Points the province gave itself (điểm tự đánh giá), appraisal sub-criteria only';

CREATE TABLE IF NOT EXISTS par_totals (
    run_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    province_code VARCHAR NOT NULL,
    par_index DOUBLE,
    appraisal_points DOUBLE,
    survey_points DOUBLE,
    "group" VARCHAR,
    incomplete_reason VARCHAR,
    se DOUBLE,
    ci_low DOUBLE,
    ci_high DOUBLE,
    df DOUBLE,
    reliability VARCHAR,
    reliability_reason VARCHAR,
    official_cluster VARCHAR,
    PRIMARY KEY (run_id, province_code)
);
COMMENT ON TABLE par_totals IS 'PAR INDEX (Chỉ số cải cách hành chính) per province: total, its appraisal and survey parts, and the group';
COMMENT ON COLUMN par_totals.official_cluster IS 'The officials'' primary sampling unit in the se (đơn vị mẫu cán bộ): agency (the export carries each official''s agency, design.official_cluster: agencies are clusters, df = agencies - 1) or official (no agency column: each official one cluster of a simple random sample, df = officials - 1)';
COMMENT ON COLUMN par_totals.run_id IS 'Run id (mã lần chạy), see runs';
COMMENT ON COLUMN par_totals.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN par_totals.province_code IS 'Two-digit province code (mã tỉnh)';
COMMENT ON COLUMN par_totals.par_index IS 'PAR INDEX value 0-100 (Chỉ số CCHC, %)';
COMMENT ON COLUMN par_totals.appraisal_points IS 'Points from the appraisal (điểm thẩm định), out of 68';
COMMENT ON COLUMN par_totals.survey_points IS 'Points from the surveys of officials and citizens (điểm điều tra xã hội học), out of 32';
COMMENT ON COLUMN par_totals.incomplete_reason IS 'Why the province has no value and no rank (thiếu dữ liệu): what its inputs lack (published with --allow-incomplete); null when complete';
COMMENT ON COLUMN par_totals."group" IS 'Group (nhóm) A-E by the PAR INDEX, bounds in methodology.yaml';
COMMENT ON COLUMN par_totals.se IS 'Standard error of the PAR INDEX from its survey part (sai số chuẩn): officials'' and citizens'' points are independent samples, variances added; the citizens'' sub-criteria combined through the respondents'' linearised scores; appraisal points carry none';
COMMENT ON COLUMN par_totals.ci_low IS 'Lower bound of the 95% confidence interval of the PAR INDEX: value - t(df) x se, clipped to 0-100';
COMMENT ON COLUMN par_totals.ci_high IS 'Upper bound of the 95% confidence interval of the PAR INDEX: value + t(df) x se, clipped to 0-100';
COMMENT ON COLUMN par_totals.df IS 'Degrees of freedom of the PAR INDEX interval: Welch-Satterthwaite combination of the officials'' (officials - 1) and citizens'' (the Satterthwaite df of their points) degrees of freedom, fractional like the SIPAS''s (at least 1)';

CREATE TABLE IF NOT EXISTS ranks (
    run_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    province_code VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    value DOUBLE,
    se DOUBLE,
    df DOUBLE,
    region_code VARCHAR NOT NULL,
    rank_national BIGINT,
    rank_regional BIGINT,
    rank_low BIGINT,
    rank_high BIGINT,
    rank_regional_low BIGINT,
    rank_regional_high BIGINT,
    p_top5 DOUBLE,
    p_bottom5 DOUBLE,
    differs_from_above BOOLEAN,
    change_value DOUBLE,
    change_se DOUBLE,
    change_ci_low DOUBLE,
    change_ci_high DOUBLE,
    change_significant BOOLEAN,
    change_places BIGINT,
    incomplete_reason VARCHAR,
    change_basis VARCHAR,
    rank_simul_low BIGINT,
    rank_simul_high BIGINT,
    in_top5_set BOOLEAN,
    in_bottom5_set BOOLEAN,
    reliability VARCHAR,
    reliability_reason VARCHAR,
    change_method VARCHAR,
    previous_se DOUBLE,
    rank_set_variance VARCHAR,
    PRIMARY KEY (run_id, province_code, measure)
);
COMMENT ON TABLE ranks IS 'Ranks (xếp hạng) of the provinces by SIPAS, its parts and the PAR INDEX, nationally and within the region, with the change since last year';
COMMENT ON COLUMN ranks.run_id IS 'Run id (mã lần chạy), see runs';
COMMENT ON COLUMN ranks.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN ranks.province_code IS 'Two-digit province code (mã tỉnh)';
COMMENT ON COLUMN ranks.measure IS 'What is ranked: sipas, sipas_policy, sipas_service or par';
COMMENT ON COLUMN ranks.value IS 'The value ranked (giá trị); null (and no rank) for a province without a figure';
COMMENT ON COLUMN ranks.region_code IS 'Region (vùng) of the province';
COMMENT ON COLUMN ranks.rank_national IS 'Rank among the provinces, 1 = best (xếp hạng toàn quốc); ties share the lower rank, on values rounded as published';
COMMENT ON COLUMN ranks.rank_regional IS 'Rank within the region (xếp hạng trong vùng)';
COMMENT ON COLUMN ranks.incomplete_reason IS 'Why the province has no value and no rank (thiếu dữ liệu): what its inputs lack (published with --allow-incomplete); null when complete';
COMMENT ON COLUMN ranks.se IS 'Standard error of the value ranked (sai số chuẩn), as in sipas_indices and par_totals';
COMMENT ON COLUMN ranks.df IS 'Degrees of freedom of the value ranked, as in sipas_indices and par_totals';
COMMENT ON COLUMN ranks.rank_low IS 'Best end of the 90% confidence set for the national rank (tập tin cậy của thứ hạng): marginal set of Mogstad, Romano, Shaikh and Wilhelm (2024), from simultaneous intervals of this province''s differences with every other (studentised parametric bootstrap with each province''s df, stepdown): 1 + the provinces surely above it; covers the true rank with probability >= 90% (design.rank_interval)';
COMMENT ON COLUMN ranks.rank_high IS 'Worst end of the 90% marginal confidence set for the national rank: the provinces ranked minus those surely below it';
COMMENT ON COLUMN ranks.rank_simul_low IS 'Best end of the 90% simultaneous confidence set for the national ranks (tập tin cậy đồng thời): all provinces'' sets hold their true ranks at once with probability >= 90%; wider than rank_low-rank_high';
COMMENT ON COLUMN ranks.rank_simul_high IS 'Worst end of the 90% simultaneous confidence set for the national ranks';
COMMENT ON COLUMN ranks.in_top5_set IS 'In the 90% confidence set for the national top five (có thể thuộc 5 tỉnh đứng đầu): the provinces that cannot be excluded from the top five (simultaneous set starts at rank 5 or better); the set holds every true top-five province with probability >= 90%';
COMMENT ON COLUMN ranks.in_bottom5_set IS 'In the 90% confidence set for the national bottom five (có thể thuộc 5 tỉnh cuối): the provinces that cannot be excluded from the bottom five; the set holds every true bottom-five province with probability >= 90%';
COMMENT ON COLUMN ranks.rank_regional_low IS 'Best end of the 90% marginal confidence set for the rank within the region (same method among the region''s provinces)';
COMMENT ON COLUMN ranks.rank_regional_high IS 'Worst end of the 90% marginal confidence set for the rank within the region';
COMMENT ON COLUMN ranks.p_top5 IS 'Descriptive simulation, not a probability (mô phỏng, không phải xác suất): share of draws around the estimates (value + se x t(df), provinces independent) in which the province ranks in the top five; it counts the sampling noise twice and is no statement about the true ranking: use in_top5_set';
COMMENT ON COLUMN ranks.p_bottom5 IS 'Descriptive simulation, not a probability (mô phỏng, không phải xác suất): share of draws around the estimates in which the province ranks in the bottom five; use in_bottom5_set';
COMMENT ON COLUMN ranks.differs_from_above IS 'Significantly different from the province ranked just above nationally: the 95% interval of the difference (se = sqrt(se1^2 + se2^2), t with Welch-Satterthwaite df) excludes 0; null for the first';
COMMENT ON COLUMN ranks.change_value IS 'Value minus last year''s value (thay đổi so với năm trước): last year''s own results in this file when present, else its published figure; null without one';
COMMENT ON COLUMN ranks.change_se IS 'Standard error of the change (sai số chuẩn của thay đổi): paired (linearised PSU by PSU with the covariance of the two years, when this year''s PSUs re-survey last year''s) or sqrt(se^2 + se_last_year^2) (independent samples), as change_method says; null against published figures without se';
COMMENT ON COLUMN ranks.change_ci_low IS 'Lower bound of the 95% interval of the change (t with Welch-Satterthwaite df); null without change_se';
COMMENT ON COLUMN ranks.change_ci_high IS 'Upper bound of the 95% interval of the change; null without change_se';
COMMENT ON COLUMN ranks.change_significant IS 'The change is significant (có ý nghĩa thống kê): its 95% interval excludes 0; null when last year has no se (change_basis = published)';
COMMENT ON COLUMN ranks.change_method IS 'How change_se was computed (phương pháp): paired (this year''s PSUs include last year''s, matched by code: the change linearised PSU by PSU, the covariance of the two years counted; t with the Satterthwaite df of the paired PSUs) or independent (no PSU re-surveyed: sqrt(se^2 + se_last_year^2), Welch-Satterthwaite df); null without change_se';
COMMENT ON COLUMN ranks.previous_se IS 'Standard error of last year''s value the change is against (sai số chuẩn năm trước); null without one';
COMMENT ON COLUMN ranks.change_places IS 'Places gained since last year''s rank (positive = moved up)';
COMMENT ON COLUMN ranks.change_basis IS 'What the change is against: results (last year''s current run in this file, with se), published (published figures without se) or reestimated (last year re-estimated on this year''s units from its silver forms, with se: the units changed)';

COMMENT ON COLUMN indicator_values.reliability IS 'Reliability (độ tin cậy) after the NCHS Data Presentation Standards for Proportions (2017): unreliable (không đáng tin cậy: effective n < 30, 95% interval >= 30 points wide, or wider than 5 points and more than 130% of the value), review (cần xem xét: design df < 8, or a value of 0% / 100%), reliable (đáng tin cậy); null without a value';
COMMENT ON COLUMN indicator_values.reliability_reason IS 'Why (lý do): every rule of the reliability flag that fired, with the figures, separated by ; (null when reliable)';
COMMENT ON COLUMN sipas_indices.reliability IS 'Reliability (độ tin cậy), the NCHS standards for proportions adapted to an index: unreliable (không đáng tin cậy: fewer than 30 respondents or a 95% interval >= 30 points wide), review (cần xem xét: design df < 8), reliable (đáng tin cậy); null without a value';
COMMENT ON COLUMN sipas_indices.reliability_reason IS 'Why (lý do): every rule of the reliability flag that fired, with the figures, separated by ; (null when reliable)';
COMMENT ON COLUMN par_totals.reliability IS 'Reliability (độ tin cậy), the NCHS standards for proportions adapted to an index: unreliable (không đáng tin cậy: a 95% interval >= 30 points wide), review (cần xem xét: design df < 8), reliable (đáng tin cậy); null without a value';
COMMENT ON COLUMN par_totals.reliability_reason IS 'Why (lý do): every rule of the reliability flag that fired, with the figures, separated by ; (null when reliable)';
COMMENT ON COLUMN ranks.reliability IS 'Reliability (độ tin cậy) of the value ranked, as in sipas_indices and par_totals';
COMMENT ON COLUMN ranks.rank_set_variance IS 'The variances the rank confidence sets (rank_low ... in_bottom5_set) were built from (phương sai dùng cho tập tin cậy của thứ hạng): stabilised (the moderated variance and its df of sipas_indices.se_stabilised, design.rank_variance) or direct (se and df of this row; the PAR INDEX has no stabilised variance)';
COMMENT ON COLUMN ranks.reliability_reason IS 'Why (lý do): every rule of the reliability flag that fired, with the figures, separated by ; (null when reliable)';

COMMENT ON COLUMN indicator_values.se_stabilised IS 'Stabilised standard error (sai số chuẩn ổn định), beside the direct se, not the published one: the province''s design effect moderated towards the design effect pooled over the provinces (empirical Bayes, Smyth 2004; the pooled design effect itself when the provinces'' design effects differ no more than their df explain) times p(1-p)/n; province rows only';
COMMENT ON COLUMN indicator_values.ci_low_stabilised IS 'Lower bound of the 95% interval from the stabilised variance: Korn-Graubard with df_stabilised';
COMMENT ON COLUMN indicator_values.ci_high_stabilised IS 'Upper bound of the 95% interval from the stabilised variance';
COMMENT ON COLUMN indicator_values.df_stabilised IS 'Degrees of freedom of the stabilised variance: the province''s df plus the prior df of the pool (the sum of all provinces'' df when fully pooled)';
COMMENT ON COLUMN sipas_indices.se_stabilised IS 'Stabilised standard error (sai số chuẩn ổn định), beside the direct se, not the published one: the province''s variance per respondent (variance x n) moderated towards the pool over the provinces (empirical Bayes, Smyth 2004; a generalised variance function var = kappa / n when fully pooled), divided by n; province rows only';
COMMENT ON COLUMN sipas_indices.ci_low_stabilised IS 'Lower bound of the 95% interval from the stabilised variance: value - t(df_stabilised) x se_stabilised, clipped to 0-100';
COMMENT ON COLUMN sipas_indices.ci_high_stabilised IS 'Upper bound of the 95% interval from the stabilised variance';
COMMENT ON COLUMN sipas_indices.df_stabilised IS 'Degrees of freedom of the stabilised variance: the province''s df plus the prior df of the pool (the sum of all provinces'' df when fully pooled)';

-- Contrasts (so sánh) with their standard errors (release: issue #23) -----------------------------------------

CREATE TABLE IF NOT EXISTS contrasts (
    run_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    unit_level VARCHAR NOT NULL,
    unit_code VARCHAR NOT NULL,
    contrast VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    value DOUBLE,
    se DOUBLE,
    df DOUBLE,
    ci_low DOUBLE,
    ci_high DOUBLE,
    significant BOOLEAN,
    PRIMARY KEY (run_id, unit_level, unit_code, contrast, measure)
);
COMMENT ON TABLE contrasts IS 'Contrasts with their design-based standard errors (so sánh có sai số chuẩn): the policy-minus-service gap per province, region and nation, and each province''s difference from the national mean';
COMMENT ON COLUMN contrasts.run_id IS 'Run id (mã lần chạy), see runs';
COMMENT ON COLUMN contrasts.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN contrasts.unit_level IS 'Level of the unit: province (tỉnh), region (vùng) or nation (toàn quốc)';
COMMENT ON COLUMN contrasts.unit_code IS 'Unit code: the two-digit province code (mã tỉnh), the region code, or VN for the nation';
COMMENT ON COLUMN contrasts.contrast IS 'policy_minus_service (chênh lệch chính sách - dịch vụ: the policy part minus the service part of SIPAS, the same respondents, linearised as one contrast) or minus_nation (chênh lệch so với toàn quốc: the province minus the national mean of the provinces, itself among them)';
COMMENT ON COLUMN contrasts.measure IS 'The measure contrasted: sipas (for the gap), or sipas, sipas_policy, sipas_service, par (for minus_nation)';
COMMENT ON COLUMN contrasts.value IS 'The contrast in percentage points (điểm phần trăm); positive = policy above service / province above the nation';
COMMENT ON COLUMN contrasts.se IS 'Its standard error (sai số chuẩn): gap from the combined linearised score of the two parts (their covariance counted); minus_nation sqrt((1 - 2/k) se^2 + sum se_i^2 / k^2) over the k provinces; region and nation gaps sqrt(sum se^2) / k';
COMMENT ON COLUMN contrasts.df IS 'Degrees of freedom of its t interval (Satterthwaite)';
COMMENT ON COLUMN contrasts.ci_low IS 'Lower bound of the 95% confidence interval of the contrast (t with df), not clipped';
COMMENT ON COLUMN contrasts.ci_high IS 'Upper bound of the 95% confidence interval of the contrast';
COMMENT ON COLUMN contrasts.significant IS 'The 95% interval excludes 0 (khác biệt có ý nghĩa thống kê); null without a standard error';

CREATE TABLE IF NOT EXISTS quarantine (
    run_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_row BIGINT NOT NULL,
    form_id VARCHAR,
    province_code VARCHAR,
    column_name VARCHAR,
    rule VARCHAR NOT NULL,
    value VARCHAR,
    message VARCHAR NOT NULL,
    record JSON NOT NULL
);
COMMENT ON TABLE quarantine IS 'Rejected rows (dòng bị cách ly), one row per reason: a form failing three rules appears three times';
COMMENT ON COLUMN quarantine.run_id IS 'Run id (mã lần chạy), see runs';
COMMENT ON COLUMN quarantine.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN quarantine.source IS 'Source (nguồn): citizen (người dân), official (cán bộ) or appraisal (thẩm định)';
COMMENT ON COLUMN quarantine.batch_id IS 'Batch (lô): the input file''s name without extension';
COMMENT ON COLUMN quarantine.source_file IS 'Input file, relative to the raw folder';
COMMENT ON COLUMN quarantine.source_row IS 'Row number as a person counts rows in the file (the header is row 1)';
COMMENT ON COLUMN quarantine.form_id IS 'Form id (mã phiếu) as written in the file';
COMMENT ON COLUMN quarantine.province_code IS 'Province code (mã tỉnh) as resolved at ingest, when it could be';
COMMENT ON COLUMN quarantine.column_name IS 'Column that broke the rule (null for a rule over the whole row)';
COMMENT ON COLUMN quarantine.rule IS 'Rule broken (quy tắc), e.g. required, allowed_codes, skip_logic, duplicate_key';
COMMENT ON COLUMN quarantine.value IS 'Offending value as read';
COMMENT ON COLUMN quarantine.message IS 'What is wrong, in words';
COMMENT ON COLUMN quarantine.record IS 'The whole rejected row as read (personal data already removed at ingest), JSON';

-- Corrections (đính chính) applied by a run: the audit trail -----------------------------------------------------

CREATE TABLE IF NOT EXISTS corrections (
    run_id VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    file VARCHAR NOT NULL,
    line BIGINT NOT NULL,
    action VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    form_id VARCHAR,
    field VARCHAR,
    old_value VARCHAR,
    new_value VARCHAR,
    reason VARCHAR NOT NULL,
    requested_by VARCHAR NOT NULL,
    requested_at DATE NOT NULL,
    "rows" BIGINT NOT NULL,
    outcome VARCHAR NOT NULL,
    province_code VARCHAR,
    file_sha256 VARCHAR,
    PRIMARY KEY (run_id, file, line)
);
COMMENT ON TABLE corrections IS 'Corrections (đính chính) applied in a run: what, why, who asked and when; the audit trail';
COMMENT ON COLUMN corrections.run_id IS 'Run id (mã lần chạy) that applied the correction, see runs';
COMMENT ON COLUMN corrections.year IS 'Survey year (năm khảo sát)';
COMMENT ON COLUMN corrections.file IS 'Correction file the line comes from';
COMMENT ON COLUMN corrections.line IS 'Line of the correction file (the header is line 1)';
COMMENT ON COLUMN corrections.action IS 'set (change a value), move (to another village), withdraw (take a form out) or replace_batch (a re-sent file)';
COMMENT ON COLUMN corrections.source IS 'Source (nguồn): citizen (người dân), official (cán bộ) or appraisal (thẩm định)';
COMMENT ON COLUMN corrections.form_id IS 'Form id (mã phiếu) corrected; province/sub-criterion for the appraisal';
COMMENT ON COLUMN corrections.field IS 'Field changed (or, for replace_batch, the batch file replaced)';
COMMENT ON COLUMN corrections.old_value IS 'Value the correction expected to find (checked before anything is applied)';
COMMENT ON COLUMN corrections.new_value IS 'Value after the correction (or the new village, or the re-sent file)';
COMMENT ON COLUMN corrections.reason IS 'Why (lý do)';
COMMENT ON COLUMN corrections.requested_by IS 'Who asked for it (người đề nghị)';
COMMENT ON COLUMN corrections.requested_at IS 'When it was asked for (ngày đề nghị)';
COMMENT ON COLUMN corrections."rows" IS 'Rows of the source the correction touched';
COMMENT ON COLUMN corrections.province_code IS 'Province (mã tỉnh) of the corrected form (of the re-sent batch''s rows for replace_batch when one province)';
COMMENT ON COLUMN corrections.file_sha256 IS 'SHA-256 of the correction file''s content when the run read it';
COMMENT ON COLUMN corrections.outcome IS 'What became of the form: valid, quarantined (still breaks another rule), withdrawn, or replaced (batch)';
