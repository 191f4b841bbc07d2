"""Personal data as keyed from paper forms: names, phones, ID numbers, addresses (all invented)."""

from __future__ import annotations

import numpy as np

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
          "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Ngọc", "Quang", "Xuân", "Thu"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hằng", "Hiếu", "Hoa", "Hùng",
         "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Phương", "Quân", "Sơn",
         "Tâm", "Thảo", "Trang", "Tuấn", "Yến", "Đạt", "Ánh", "Lộc"]
PLACES = ["Thôn Đông", "Thôn Tây", "Xóm Mới", "Tổ dân phố 3", "Ấp Bắc", "Bản Nà", "Khu phố 2"]


def names(rng: np.random.Generator, n: int) -> list[str]:
    f = rng.integers(0, len(FAMILY), n)
    m = rng.integers(0, len(MIDDLE), n)
    g = rng.integers(0, len(GIVEN), n)
    return [f"{FAMILY[a]} {MIDDLE[b]} {GIVEN[c]}" for a, b, c in zip(f, m, g, strict=True)]


def phones(rng: np.random.Generator, n: int) -> list[str]:
    prefix = np.array(["090", "091", "098", "097", "086", "088", "093", "096"])[rng.integers(0, 8, n)]
    tail = rng.integers(0, 10_000_000, n)
    return [f"{p}{t:07d}" for p, t in zip(prefix, tail, strict=True)]


def id_numbers(rng: np.random.Generator, n: int, province_code: str) -> list[str]:
    tail = rng.integers(0, 10**9, n)
    return [f"0{province_code}{t:09d}" for t in tail]


def addresses(rng: np.random.Generator, n: int) -> list[str]:
    house = rng.integers(1, 300, n)
    place = rng.integers(0, len(PLACES), n)
    return [f"Số {h}, {PLACES[p]}" for h, p in zip(house, place, strict=True)]


def emails(rng: np.random.Generator, n: int) -> list[str]:
    tail = rng.integers(0, 10**6, n)
    return [f"canbo{t:06d}@example.gov.vn" for t in tail]
