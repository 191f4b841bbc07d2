"""The headline and the key findings in words, computed from the figures (Vietnamese and English). Every
claim of a difference has its basis beside it (a 95% interval of the difference that excludes 0); where no
standard error exists (a change against published figures) the text says the significance is unknown,
never "not significant"; top and bottom five are given as the sets the rank intervals support."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

Sentence = tuple[str, str]  # (vi, en)


@dataclass(frozen=True)
class Findings:
    headline: Sentence
    findings: list[Sentence]


def names(frame: pl.DataFrame, col: str = "unit_name_vi") -> str:
    return ", ".join(frame[col].to_list()) if frame.height else "–"


def _f(v: float | None, d: int = 2, sign: bool = False) -> str:
    return "–" if v is None else (f"{v:+.{d}f}" if sign else f"{v:.{d}f}")


def national(sipas: pl.DataFrame, level: str = "sipas", node: str = "SIPAS") -> dict:
    row = sipas.filter((pl.col("unit_level") == "nation") & (pl.col("level") == level) & (pl.col("node") == node))
    return row.row(0, named=True) if row.height else {}


def versus_nation(contrasts: pl.DataFrame, measure: str) -> tuple[int, int, int] | None:
    """(above, below, cannot be told apart) from the provinces' differences from the national mean; None
    when the file has no standard errors of those differences."""
    d = contrasts.filter((pl.col("contrast") == "minus_nation") & (pl.col("measure") == measure)
                         & pl.col("significant").is_not_null())
    if d.height == 0:
        return None
    above = d.filter(pl.col("significant") & (pl.col("value") > 0)).height
    below = d.filter(pl.col("significant") & (pl.col("value") < 0)).height
    return above, below, d.height - above - below


def change_sentence(ranks: pl.DataFrame, year: int, published_nation: float | None, nation_value: float | None,
                    measure_vi: str = "SIPAS", measure_en: str = "SIPAS") -> Sentence:
    """The change on last year, only where a basis exists, naming the basis."""
    r = ranks.filter(pl.col("change_value").is_not_null())
    prev = year - 1
    if r.height == 0:
        if published_nation is not None and nation_value is not None:
            d = nation_value - published_nation
            return (f"{measure_vi} toàn quốc năm {prev} đã công bố là {published_nation:.2f}; chênh lệch {d:+.2f} điểm "
                    f"không có sai số chuẩn nên không đánh giá được ý nghĩa thống kê; chưa tỉnh nào có số liệu {prev} để so "
                    f"sánh.",
                    f"The published national {measure_en} for {prev} was {published_nation:.2f}; the difference of {d:+.2f} "
                    f"points has no standard error, so its significance is unknown; no province has a {prev} figure to compare.")
        return (f"Không có số liệu năm {prev} để so sánh {measure_vi}.", f"No {prev} figure to compare {measure_en} with.")
    basis = r["change_basis"].drop_nulls().unique().sort().to_list()
    if basis and set(basis) <= {"results", "reestimated"}:
        up = r.filter(pl.col("change_significant") & (pl.col("change_value") > 0)).height
        down = r.filter(pl.col("change_significant") & (pl.col("change_value") < 0)).height
        what_vi = ("kết quả năm trước trong tệp này" if basis == ["results"] else
                   "số liệu năm trước ước lượng lại trên các đơn vị năm nay")
        what_en = ("last year's own results in this file" if basis == ["results"] else
                   "last year re-estimated on this year's units")
        mean = r["change_value"].mean()
        return (f"So với năm {prev} (cơ sở: {what_vi}, khoảng tin cậy 95% của chênh lệch): {up} tỉnh tăng và {down} tỉnh giảm "
                f"có ý nghĩa thống kê, {r.height - up - down} tỉnh không có thay đổi phân biệt được; thay đổi trung bình "
                f"{mean:+.2f} điểm.",
                f"Against {prev} (basis: {what_en}, 95% interval of each change): {up} provinces rose and {down} fell "
                f"significantly, {r.height - up - down} show no change that can be told apart; mean change {mean:+.2f} points.")
    listed = "; ".join(f"{n} {v:+.2f}" for n, v in r.select("unit_name_vi", "change_value").iter_rows())
    nat = ""
    nat_en = ""
    if published_nation is not None and nation_value is not None:
        nat = f" Toàn quốc: {nation_value - published_nation:+.2f} điểm so với {published_nation:.2f} đã công bố."
        nat_en = f" Nation: {nation_value - published_nation:+.2f} points against the published {published_nation:.2f}."
    return (f"Chỉ {r.height} tỉnh có số liệu {measure_vi} năm {prev} đã công bố ({listed}); số liệu công bố không có sai số "
            f"chuẩn nên không xác định được thay đổi có ý nghĩa thống kê hay không.{nat}",
            f"Only {r.height} province(s) have a published {prev} {measure_en} figure ({listed}); published figures carry "
            f"no standard error, so whether the change is significant is unknown.{nat_en}")


def ends(ranks: pl.DataFrame, interval: str) -> list[Sentence]:
    """Top and bottom five as sets the rank intervals support: the five best estimates, those whose whole
    interval lies within the top (bottom) five, and how many intervals reach it."""
    r = ranks.filter(pl.col("rank_national").is_not_null()).sort("rank_national", "unit_code")
    k = r.height
    if k < 10:
        return []
    out = []
    for vi, en, first, sure, could in (
            ("đầu", "top", r.head(5), r.filter(pl.col("rank_high") <= 5), r.filter(pl.col("rank_low") <= 5)),
            ("cuối", "bottom", r.tail(5), r.filter(pl.col("rank_low") > k - 5), r.filter(pl.col("rank_high") > k - 5))):
        column = f"in_{en}5_set"
        if column in r.columns and r[column].drop_nulls().len():  # the confidence set for the five (inference)
            held = r.filter(pl.col(column).fill_null(False))
            out.append((f"5 tỉnh {vi} theo ước lượng: {names(first)}. Tập tin cậy 90% cho nhóm 5 tỉnh {vi} gồm {held.height} "
                        f"tỉnh: {names(held)} (chứa cả 5 tỉnh {vi} thật với xác suất ít nhất 90%).",
                        f"{en.capitalize()} five by estimate: {names(first, 'unit_name_en')}. The 90% confidence set for the "
                        f"{en} five holds {held.height} provinces: {names(held, 'unit_name_en')} (it holds every true {en}-five "
                        f"province with probability at least 90%)."))
            continue
        out.append((f"5 tỉnh {vi} theo ước lượng: {names(first)}. Chắc chắn trong nhóm 5 tỉnh {vi} ({interval[0]} nằm trọn "
                    f"trong đó): {names(sure)}; {could.height} tỉnh có {interval[0]} chạm nhóm này.",
                    f"{en.capitalize()} five by estimate: {names(first, 'unit_name_en')}. Surely in the {en} five (the whole "
                    f"{interval[1]} inside it): {names(sure, 'unit_name_en')}; {could.height} provinces' intervals reach it."))
    return out


def groups_sentence(par: pl.DataFrame, bounds: list[tuple[str, float]]) -> Sentence:
    """PAR INDEX groups present, and how many provinces' intervals cross the bound below or above their group."""
    p = par.filter((pl.col("unit_level") == "province") & pl.col("par_index").is_not_null())
    counts = p.group_by("par_group").len().sort("par_group")
    listed = ", ".join(f"{g}: {n}" for g, n in counts.iter_rows())
    cuts = [b for _, b in bounds if b > 0]
    crossing = p.filter(pl.any_horizontal([(pl.col("ci_low") < b) & (pl.col("ci_high") >= b) for b in cuts])
                        if cuts and "ci_low" in p.columns else pl.lit(False)).height
    return (f"Chỉ số CCHC theo nhóm ({listed}); khoảng tin cậy 95% của {crossing} tỉnh vượt qua một ngưỡng nhóm "
            f"(chỉ phần điều tra có sai số chọn mẫu).",
            f"PAR INDEX groups ({listed}); the 95% interval of {crossing} provinces crosses a group bound "
            f"(only the survey part carries sampling error).")


def gap_sentence(contrasts: pl.DataFrame) -> Sentence | None:
    g = contrasts.filter(pl.col("contrast") == "policy_minus_service")
    nat = g.filter(pl.col("unit_level") == "nation")
    if nat.height == 0 or nat["se"][0] is None:
        return None
    n = nat.row(0, named=True)
    prov = g.filter((pl.col("unit_level") == "province") & pl.col("significant").fill_null(False))
    told = "có ý nghĩa thống kê" if n["significant"] else "không phân biệt được với 0"
    told_en = "significant" if n["significant"] else "cannot be told apart from 0"
    return (f"Chênh lệch chính sách − dịch vụ toàn quốc {n['value']:+.2f} điểm (KTC 95% {n['ci_low']:+.2f} đến "
            f"{n['ci_high']:+.2f}, {told}); ở {prov.height} tỉnh chênh lệch này có ý nghĩa thống kê (cùng người trả lời: "
            f"sai số từ hiệu tuyến tính hóa).",
            f"Policy minus service nationally {n['value']:+.2f} points (95% CI {n['ci_low']:+.2f} to {n['ci_high']:+.2f}, "
            f"{told_en}); in {prov.height} provinces the gap is significant (same respondents: the se of the linearised "
            f"contrast).")


def compute_findings(year: int, sipas: pl.DataFrame, ranks: pl.DataFrame, par: pl.DataFrame, contrasts: pl.DataFrame,
                     published: pl.DataFrame | None, bounds: list[tuple[str, float]],
                     interval: tuple[str, str] = ("khoảng xếp hạng 90%", "90% rank interval")) -> Findings:
    """The headline and the findings of a year's release from its frames (see module doc)."""
    nat = national(sipas)
    s_ranks = ranks.filter(pl.col("measure") == "sipas")
    par_nat = par.filter(pl.col("unit_level") == "nation")
    par_value = par_nat["par_index"][0] if par_nat.height else None
    told = versus_nation(contrasts, "sipas")
    k = s_ranks.filter(pl.col("value").is_not_null()).height
    if told is None:
        apart_vi = f"{k} tỉnh, thành phố; không có sai số chuẩn của chênh lệch với toàn quốc để phân biệt"
        apart_en = f"{k} provinces; no standard error of their difference from the nation to tell them apart"
    else:
        above, below, same = told
        apart_vi = (f"{above} tỉnh cao hơn và {below} tỉnh thấp hơn trung bình toàn quốc (khoảng tin cậy 95% của chênh lệch "
                    f"không chứa 0), {same} tỉnh không phân biệt được với trung bình")
        apart_en = (f"{above} provinces above and {below} below the national mean (95% interval of the difference excludes 0), "
                    f"{same} cannot be told apart from it")
    headline = (f"SIPAS {year}: toàn quốc {_f(nat.get('value'))} (KTC 95% {_f(nat.get('ci_low'))}–{_f(nat.get('ci_high'))}); "
                f"{apart_vi}. Chỉ số CCHC trung bình {_f(par_value)}.",
                f"SIPAS {year}: nation {_f(nat.get('value'))} (95% CI {_f(nat.get('ci_low'))}–{_f(nat.get('ci_high'))}); "
                f"{apart_en}. PAR INDEX mean {_f(par_value)}.")
    pub_nat = None
    if published is not None:
        p = published.filter((pl.col("year") == year - 1) & (pl.col("measure") == "sipas") & (pl.col("unit") == "VN"))
        pub_nat = p["value"][0] if p.height else None
    findings: list[Sentence] = []
    for level, node, vi, en in (("part", "policy", "chính sách công", "public policy"),
                                ("part", "service", "dịch vụ hành chính công", "public administrative services")):
        n = national(sipas, level, node)
        if n:
            findings.append((f"Hài lòng về {vi}: {_f(n['value'])} (KTC 95% {_f(n['ci_low'])}–{_f(n['ci_high'])}).",
                             f"Satisfaction with {en}: {_f(n['value'])} (95% CI {_f(n['ci_low'])}–{_f(n['ci_high'])})."))
    gap = gap_sentence(contrasts)
    if gap:
        findings.append(gap)
    findings.append(change_sentence(s_ranks, year, pub_nat, nat.get("value")))
    findings += ends(s_ranks, interval)
    findings.append(groups_sentence(par, bounds))
    told_par = versus_nation(contrasts, "par")
    if told_par is not None:
        findings.append((f"Chỉ số CCHC: {told_par[0]} tỉnh cao hơn, {told_par[1]} tỉnh thấp hơn trung bình toàn quốc có ý nghĩa "
                         f"thống kê (phần điều tra), {told_par[2]} tỉnh không phân biệt được.",
                         f"PAR INDEX: {told_par[0]} provinces significantly above, {told_par[1]} below the national mean "
                         f"(survey part), {told_par[2]} cannot be told apart."))
    return Findings(headline, findings)
