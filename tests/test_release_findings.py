"""Pure parts of the release: the contrasts' standard errors (hand-worked, and an identity of the tree's own
variances), the findings in words computed from small frames, the drawing surface's rules."""

from __future__ import annotations

import polars as pl
import pytest

from sipas_pipeline.contrasts import minus_nation, with_interval
from sipas_pipeline.report.findings import change_sentence, compute_findings


def test_minus_nation_hand_worked():
    """Three provinces 80, 90, 70 (se 1, 2, 3; df 4, 5, 6): the national mean 80; province 1's difference 0 with
    var (2/3)^2 1 + (1/3)^2 (4 + 9) = 17/9 and Satterthwaite df over its three terms."""
    frame = pl.DataFrame({"province_code": ["01", "02", "03"], "measure": "sipas", "value": [80.0, 90.0, 70.0],
                          "se": [1.0, 2.0, 3.0], "df": [4.0, 5.0, 6.0]})
    out = minus_nation(frame).sort("province_code")
    assert out["value"].to_list() == pytest.approx([0.0, 10.0, -10.0])
    assert out["var"].to_list() == pytest.approx([17 / 9, 4 / 9 * 4 + (1 + 9) / 9, 4 / 9 * 9 + (1 + 4) / 9])
    df1 = (17 / 9) ** 2 / ((4 / 9) ** 2 / 4 + (4 / 9) ** 2 / 5 + 1 ** 2 / 6)
    assert out["df"][0] == pytest.approx(df1)
    # the wrong method (the province against an independent national mean) gives 1 + 14/9: a different figure
    assert out["var"][0] != pytest.approx(1 + 14 / 9)
    ci = with_interval(out, 0.95)
    assert ci["significant"].to_list() == [False, True, True] and ci["ci_low"][0] < 0 < ci["ci_high"][0]


def test_policy_minus_service_counts_the_parts_covariance(sample_work):
    """SIPAS is the mean of its two parts, so var(P - S) = 2 var(P) + 2 var(S) - 4 var(SIPAS): the gap's se from
    its own linearised score equals what the tree's published variances imply, and differs from the
    independent sqrt(se_P^2 + se_S^2)."""
    from sipas_pipeline.stages import read_results

    t = read_results(sample_work["work"])
    s = t["sipas_indices"].filter((pl.col("unit_level") == "province") & pl.col("level").is_in(["sipas", "part"]))
    wide = s.pivot(on="node", index="unit_code", values="se")
    gap = (t["contrasts"].filter((pl.col("contrast") == "policy_minus_service") & (pl.col("unit_level") == "province"))
           .join(wide, on="unit_code"))
    assert gap.height == 63
    implied = (2 * gap["policy"] ** 2 + 2 * gap["service"] ** 2 - 4 * gap["SIPAS"] ** 2).to_list()
    assert (gap["se"] ** 2).to_list() == pytest.approx(implied, rel=1e-9)
    independent = (gap["policy"] ** 2 + gap["service"] ** 2).sqrt()
    assert ((gap["se"] - independent).abs() > 0.05).sum() > 50
    values = s.pivot(on="node", index="unit_code", values="value").join(gap.select("unit_code", "value"), on="unit_code")
    assert values["value"].to_list() == pytest.approx((values["policy"] - values["service"]).to_list(), abs=1e-9)


def frames(k: int = 12, above: int = 2, below: int = 1, basis: str | None = "published", shift: float = 0.0):
    """A small year: k provinces, a nation row, ranks, PAR, contrasts with `above`/`below` significant ones."""
    codes = [f"{i:02d}" for i in range(1, k + 1)]
    names = [f"Tỉnh {i}" for i in range(1, k + 1)]
    vals = [90.0 - i + shift for i in range(k)]
    sipas = pl.DataFrame({"unit_level": ["nation"] * 3, "unit_code": ["VN"] * 3, "level": ["sipas", "part", "part"],
                          "node": ["SIPAS", "policy", "service"], "value": [sum(vals) / k, 84.0, 85.0],
                          "ci_low": [80.0, 82.0, 83.0], "ci_high": [88.0, 86.0, 87.0]})
    ranks = pl.DataFrame({"measure": "sipas", "unit_code": codes, "unit_name_vi": names, "unit_name_en": names,
                          "value": vals, "rank_national": list(range(1, k + 1)),
                          "rank_low": [1, 1, 2, *range(2, k - 1)], "rank_high": [3, 6, 8, *range(8, k + 5)][:k],
                          "change_value": [2.0] + [None] * (k - 1) if basis == "published" else [1.0] * k,
                          "change_basis": ["published"] + [None] * (k - 1) if basis == "published" else [basis] * k,
                          "change_significant": [None] * k if basis == "published" else [True, False] * (k // 2)})
    par = pl.DataFrame({"unit_level": ["province"] * k + ["nation"], "unit_code": [*codes, "VN"],
                        "par_index": [*[91.0 - i for i in range(k)], 86.0], "par_group": [*["A", "A"] + ["B"] * (k - 2), None],
                        "ci_low": [*[89.0 - i for i in range(k)], None], "ci_high": [*[93.0 - i for i in range(k)], None]})
    sig = [True] * above + [True] * below + [False] * (k - above - below)
    value = [3.0] * above + [-3.0] * below + [0.5] * (k - above - below)
    contrasts = pl.DataFrame({"unit_level": "province", "unit_code": codes, "contrast": "minus_nation", "measure": "sipas",
                              "value": value, "se": 1.0, "ci_low": [v - 2 for v in value], "ci_high": [v + 2 for v in value],
                              "significant": sig})
    published = pl.DataFrame({"year": [2023], "measure": ["sipas"], "unit": ["VN"], "value": [82.66]})
    return sipas, ranks, par, contrasts, published


BOUNDS = [("A", 90.0), ("B", 80.0), ("C", 70.0), ("D", 60.0), ("E", 0.0)]


def test_headline_is_computed_from_the_figures():
    first = compute_findings(2024, *frames(), BOUNDS)
    assert "2 tỉnh cao hơn và 1 tỉnh thấp hơn" in first.headline[0] and "9 cannot be told apart" in first.headline[1]
    moved = compute_findings(2024, *frames(above=4, below=3), BOUNDS)
    assert moved.headline != first.headline and "4 provinces above and 3 below" in moved.headline[1]
    shifted = compute_findings(2024, *frames(shift=1.5), BOUNDS)
    assert shifted.headline != first.headline and f"nation {sum(90 - i + 1.5 for i in range(12)) / 12:.2f}" in shifted.headline[1]


def test_no_significance_claimed_without_a_basis():
    sipas, ranks, par, contrasts, published = frames()
    none = compute_findings(2024, sipas, ranks, par, contrasts.clear(), published, BOUNDS)
    assert "no standard error of their difference" in none.headline[1] and "significan" not in none.headline[1]
    assert "above" not in none.headline[1]
    change = change_sentence(ranks, 2024, 82.66, 84.0)
    assert "significance" not in change[1] or "is unknown" in change[1]
    assert "whether the change is significant is unknown" in change[1] and "Only 1 province" in change[1]
    assert "rose" not in change[1] and "không xác định được" in change[0]
    with_se = change_sentence(frames(basis="results")[1], 2024, None, None)
    assert "basis: last year's own results in this file" in with_se[1] and "6 provinces rose" in with_se[1]
    nothing = change_sentence(ranks.with_columns(pl.lit(None, pl.Float64).alias("change_value")), 2024, None, None)
    assert nothing == ("Không có số liệu năm 2023 để so sánh SIPAS.", "No 2023 figure to compare SIPAS with.")


def test_top_and_bottom_five_as_sets():
    f = compute_findings(2024, *frames(), BOUNDS)
    top = next(en for _, en in f.findings if en.startswith("Top five"))
    # rank intervals 1-3 and 1-6 and 2-8: only the first lies inside the top five; those starting at 5 or better reach it
    assert "Surely in the top five (the whole 90% rank interval inside it): Tỉnh 1;" in top
    assert "7 provinces' intervals reach it" in top
    sipas, ranks, par, contrasts, published = frames()
    sets = ranks.with_columns(pl.Series("in_top5_set", [True] * 7 + [False] * 5),
                              pl.Series("in_bottom5_set", [False] * 6 + [True] * 6))
    f = compute_findings(2024, sipas, sets, par, contrasts, published, BOUNDS, ("tập tin cậy 90%", "90% confidence set"))
    top = next(en for _, en in f.findings if en.startswith("Top five"))
    assert ("The 90% confidence set for the top five holds 7 provinces: Tỉnh 1, Tỉnh 2, Tỉnh 3, Tỉnh 4, Tỉnh 5, Tỉnh 6, "
            "Tỉnh 7") in top


def test_canvas_never_draws_text_under_11_px(tmp_path):
    from PIL import Image

    from sipas_pipeline.report.drawing import Canvas

    c = Canvas(100, 40, "t")
    c.text(2, 20, "nhỏ", size=7)
    c.rect(0, 30, 50, 5, "#000")
    assert "font-size='11'" in c.svg() and "nhỏ" in c.svg()
    with Image.open(c.png(tmp_path / "t.png", scale=2)) as im:
        assert im.size == (200, 80) and im.getpixel((10, 64)) == (0, 0, 0)


@pytest.mark.parametrize("year", [2024, 2025])
def test_tile_map_places_every_unit_once(year):
    """Each year's tile file holds exactly its units (63 provinces in 2024, 34 in 2025), each in its own place,
    and its labels fit a tile."""
    from sipas_pipeline.methodology import load_methodology

    m = load_methodology(year)
    tiles = m.tile_map()
    assert tiles is not None and tiles.height == m.provinces.height == {2024: 63, 2025: 34}[year]
    assert set(tiles["province_code"]) == set(m.provinces["province_code"])
    assert tiles.select("row", "col").unique().height == tiles.height
    assert tiles["short"].str.len_chars().max() <= 9
    # north stays north: Hà Nội above Thành phố Hồ Chí Minh, Cà Mau at the bottom
    row = dict(zip(tiles["province_code"], tiles["row"], strict=True))
    assert row["01"] < row["79"] < row["96"] == tiles["row"].max()
