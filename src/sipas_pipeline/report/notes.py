"""Notes on method and sources (ghi chú phương pháp và nguồn), Vietnamese and English, from the methodology
and the run record: what the figures are, how sure they are, where they come from and when."""

from __future__ import annotations

from html import escape

import polars as pl

from sipas_pipeline.report.figures import WIDE, Context

Note = tuple[str, str, str]  # (topic, vi, en)


FLAGS_NCHS = ("flags", "Dấu † (không đáng tin cậy), theo Chuẩn trình bày số liệu tỷ lệ của NCHS (2017): ít hơn 30 người trả "
              "lời hoặc khoảng tin cậy 95% rộng từ 30 điểm trở lên (chỉ tiêu: cả cỡ mẫu hiệu dụng dưới 30 và độ rộng tương "
              "đối); số liệu có bậc tự do dưới 8 được ghi \"cần xem xét\" (mọi tỉnh: mỗi tỉnh chỉ có khoảng 4 xã mẫu).",
              "Mark † (unreliable), after the NCHS Data Presentation Standards for Proportions (2017): under 30 respondents "
              "or a 95% interval 30 points wide or more (indicators: also an effective n under 30 and the relative width); "
              "figures with under 8 degrees of freedom are marked \"review\" (every province: about 4 sampled communes each).")
FLAGS_OLD = ("flags", f"Dấu † (kém tin cậy): mẫu nhỏ (dưới 30) hoặc khoảng tin cậy 95% rộng hơn {WIDE:g} điểm.",
             f"Mark † (less reliable): a small sample (under 30) or a 95% interval wider than {WIDE:g} points.")


def _accounting(ctx: Context) -> dict[str, dict]:
    return {r["source"]: r for r in ctx.data["accounting"].iter_rows(named=True)}


def notes(ctx: Context) -> list[Note]:
    d = ctx.data
    run = d["run"].row(0, named=True)
    acc = _accounting(ctx)
    forms = {s: (acc.get(s) or {}).get("valid") for s in ("citizen", "official", "appraisal")}
    read = {s: (acc.get(s) or {}).get("read") for s in ("citizen", "official", "appraisal")}
    units = d["ranks"].filter(pl.col("measure") == "sipas").height
    bounds = ", ".join(f"{g} ≥ {b:g}" if b > 0 else f"{g} < {prev:g}" for (g, b), prev in
                       zip(ctx.bounds, [0.0, *[b for _, b in ctx.bounds]], strict=False))
    vi_interval, en_interval = ctx.interval
    method = d["methodology"]
    version = method["version"][0] if method.height else "–"
    mhash = (run.get("methodology_hash") or "")[:16]
    finished = run.get("finished_at")
    published = finished.date().isoformat() if finished is not None else "–"
    inputs = d["inputs"].height
    earlier = ""
    if ctx.published is not None:
        srcs = ctx.published.filter(pl.col("year") < d.year)["source"].str.replace(r" \(.*$", "").unique().sort().to_list()
        earlier = "; ".join(srcs)
    return [
        ("sources", f"Nguồn dữ liệu: khảo sát người dân ({forms['citizen'] or 0:,} phiếu hợp lệ trên {read['citizen'] or 0:,} "
                    f"phiếu đọc được), khảo sát cán bộ, công chức ({forms['official'] or 0:,} phiếu hợp lệ) và điểm thẩm định "
                    f"({forms['appraisal'] or 0:,} dòng hợp lệ); {inputs} tệp đầu vào, mỗi tệp ghi mã băm SHA-256 trong sổ "
                    f"lần chạy. "
                    "Phiếu bị cách ly được liệt kê kèm lý do, không bị bỏ sót.",
                    f"Data: the citizens' survey ({forms['citizen'] or 0:,} valid forms of {read['citizen'] or 0:,} read), the "
                    f"officials' survey ({forms['official'] or 0:,} valid forms) and the appraisal points "
                    f"({forms['appraisal'] or 0:,} "
                    f"valid rows); {inputs} input files, each with its SHA-256 in the run record. Quarantined forms are listed "
                    "with their reasons, never dropped silently."),
        ("design", "Thiết kế mẫu: phân tầng theo tỉnh × thành thị/nông thôn, xã là đơn vị mẫu cấp 1 (chọn theo xác suất tỷ lệ "
                   "với số người trưởng thành), thôn rồi người trả lời được chọn ngẫu nhiên; trọng số là nghịch đảo xác "
                   "suất chọn.",
                   "Sample design: strata of province × urban/rural, communes as primary sampling units (drawn with probability "
                   "proportional to adults), then villages and respondents at random; weights are inverse inclusion "
                   "probabilities."),
        ("index", "Chỉ tiêu là tỷ lệ có trọng số trả lời hài lòng (4–5) trong số người trả lời (\"không biết\" không tính); "
                                                                                                             "yếu tố là "
                  "trung bình các chỉ tiêu, phần là trung bình các yếu tố, SIPAS là trung bình hai phần. Chỉ số CCHC = 68 điểm "
                  "thẩm định + 32 điểm điều tra xã hội học.",
                  "An indicator is the weighted share satisfied (4-5) among those who answered (\"don't know\" excluded); "
                                                                                                             "an element "
                  "is the mean of its indicators, a part the mean of its elements, SIPAS the mean of the two parts. PAR "
                  "INDEX = 68 "
                  "appraisal points + 32 survey points."),
        ("nation", f"Số liệu toàn quốc là trung bình không trọng số của {units} tỉnh (mỗi tỉnh tính một lần, như số liệu "
                   f"công bố), "
                   "vùng là trung bình các tỉnh của vùng; sai số chuẩn sqrt(tổng se²)/k (các tỉnh độc lập).",
                   f"The national figure is the unweighted mean of the {units} provinces (each counts once, as published); "
                   f"a region "
                   "the mean of its provinces; se = sqrt(sum se^2) / k (provinces independent)."),
        ("ci", "Khoảng tin cậy 95%: sai số chuẩn theo thiết kế mẫu (tuyến tính hóa Taylor trên tầng và xã), phân phối t với "
               "bậc tự "
               "do = số xã − số tầng (Satterthwaite cho chỉ số tổng hợp); chỉ tiêu dùng khoảng Korn–Graubard. Với khoảng 4 "
               "xã mỗi "
               "tỉnh, khoảng tin cậy của tỉnh rộng. Khoảng của Chỉ số CCHC chỉ tính phần điều tra (điểm thẩm định không có "
               "sai số chọn mẫu).",
               "95% confidence intervals: design-based standard errors (Taylor linearisation over strata and communes), t with "
               "df = communes - strata (Satterthwaite for composites); indicators use Korn-Graubard intervals. With about 4 "
               "communes "
               "a province, provincial intervals are wide. The PAR INDEX interval covers its survey part only (appraisal points "
               "carry no sampling error)."),
        ("ranks", f"Thứ hạng: {vi_interval} (mức 90%), khác với khoảng tin cậy 95% của giá trị; một khoảng xếp hạng rộng "
                  f"nghĩa là "
                  "số liệu không đủ để phân biệt thứ hạng đó. Đồng hạng khi giá trị làm tròn 2 chữ số bằng nhau.",
                  f"Ranks: the {en_interval} (90% level), unlike the 95% intervals of the values; a wide rank interval means the "
                  "survey cannot tell that rank apart. Ties share a rank on values rounded to 2 decimals."),
        ("groups", f"Nhóm Chỉ số CCHC theo ngưỡng: {bounds}.", f"PAR INDEX groups by bounds: {bounds}."),
        ("contrasts", "Chênh lệch chính sách − dịch vụ: cùng người trả lời cả hai phần nên sai số chuẩn tính từ điểm tuyến "
                      "tính hóa "
                      "của chính hiệu số (tính cả hiệp phương sai). Chênh lệch với toàn quốc: tỉnh trừ trung bình các tỉnh "
                      "(có cả "
                      "tỉnh đó), var = (1 − 2/k) se² + tổng se²/k². \"Có ý nghĩa\" nghĩa là khoảng tin cậy 95% không chứa 0.",
                      "Policy minus service: the same respondents answer both parts, so the se comes from the linearised "
                      "score of "
                      "the difference itself (their covariance counted). Difference from the nation: the province minus the "
                      "mean of "
                      "the provinces (itself among them), var = (1 - 2/k) se^2 + sum se^2 / k^2. \"Significant\" means the 95% "
                      "interval excludes 0."),
        ("change", "Thay đổi so với năm trước chỉ được nêu khi có cơ sở: kết quả năm trước trong tệp này (có sai số chuẩn) "
                   "hoặc số liệu "
                   "đã công bố (không có sai số chuẩn: không đánh giá được ý nghĩa thống kê).",
                   "A change on last year is given only where a basis exists: last year's own results in this file (with "
                   "se) or a "
                   "published figure (no se: its significance cannot be judged)."),
        FLAGS_NCHS if "reliability" in d["sipas"].columns else FLAGS_OLD,
        ("provenance", f"Phương pháp luận phiên bản {version} (mã băm {mhash}); mã nguồn {run.get('code_version') or '–'}; "
                       f"lần chạy "
                       f"{run['run_id']}, mã băm kết quả {(run.get('results_hash') or '')[:16]}; ngày công bố {published}."
                       + (f" Số liệu năm trước đã công bố: {earlier}." if earlier else ""),
                       f"Methodology version {version} (hash {mhash}); code {run.get('code_version') or '–'}; run "
                       f"{run['run_id']}, "
                       f"results hash {(run.get('results_hash') or '')[:16]}; published {published}."
                       + (f" Earlier published figures: {earlier}." if earlier else "")),
    ]


def section(ctx: Context) -> str:
    items = "".join(f"<li data-topic='{t}'>{escape(vi)}<br><span class='en'>{escape(en)}</span></li>" for t, vi, en in notes(ctx))
    return (f"<section id='notes'><h2>Ghi chú phương pháp và nguồn <span class='en'>(Notes on method and sources)</span></h2>"
            f"<ul class='notes'>{items}</ul></section>")
