"""Write the official lists of administrative units (General Statistics Office codes) from the PyPI
package `vietnam-provinces` as committed data files: run `python3 tools/official_units.py` (stdlib only).

The two versions the frames need cannot be installed together, and the pipeline never imports the package:
each version is downloaded with pip into a temporary folder, installed into its own temporary venv, and its
`data/nested-divisions.json` read there. Written (UTF-8, names NFC as the package spells them):

- schemas/2024/districts.csv, schemas/2024/communes.csv: 0.6.0, the 63 provinces, 696 districts and 10,051
  communes before 1 July 2025; the unit type read from the name (the package's `division_type` says `huyện`
  for every district and `xã` for every commune), urban = phường or thị trấn;
- schemas/2025/communes.csv: 2025.10.1, the 3,321 communes (phường, xã, đặc khu) of the 34 units; urban = phường;
- schemas/2025/commune_mapping.csv: each 2024 commune -> the 2025 commune taken to contain it (rules below).

The package gives no predecessors. Documented assumption (the `rule` column):
- `code`: a 2025 commune whose code is a 2024 commune's code (in an old province of the same unit) contains that
  commune: the merged commune kept the code of one of its predecessors (3,310 of 3,321);
- `nearest code`: every other 2024 commune goes to the 2025 commune, among those anchored in its 2024 district,
  with the nearest code (codes run in geographic order within a district; ties to the lower code); a 2025 commune
  without a code predecessor is anchored in the district of the nearest 2024 code of its unit; where the district
  has no anchored commune, the nearest code in the unit;
- the special zones (đặc khu) without a code predecessor (island districts that had no communes in 0.6.0) take none.
The versions and SHA-256 of the wheels and data files are printed and go into each file's header and the
year's methodology.yaml (`frame.source`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import unicodedata
import venv
from pathlib import Path

PACKAGE = "vietnam-provinces"
VERSIONS = {2024: "0.6.0", 2025: "2025.10.1"}
ROOT = Path(__file__).resolve().parents[1]
MERGER = ROOT / "schemas" / "2025" / "unit_mapping.csv"
DISTRICT_TYPES = ("Thành phố", "Thị xã", "Quận", "Huyện")
COMMUNE_TYPES = {"Phường": "phường", "Thị trấn": "thị trấn", "Xã": "xã", "Đặc khu": "đặc khu"}
URBAN = {"phường", "thị trấn"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_data(version: str, tmp: Path) -> tuple[list[dict], dict[str, str]]:
    """The package's nested list at `version` (installed into a fresh venv under `tmp`) and its provenance."""
    wheels = tmp / f"wheel-{version}"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "-d", str(wheels), f"{PACKAGE}=={version}"], check=True)
    wheel = next(wheels.glob("*.whl"))
    env = tmp / f"venv-{version}"
    venv.create(env, with_pip=True)
    py = env / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    where = subprocess.run([str(py), "-c", "import vietnam_provinces, pathlib; "
                            "print(pathlib.Path(vietnam_provinces.__file__).parent / 'data' / 'nested-divisions.json')"],
                           check=True, capture_output=True, text=True).stdout.strip()
    data = Path(where)
    source = {"package": PACKAGE, "version": version, "wheel": wheel.name, "wheel_sha256": _sha256(wheel),
              "file": "vietnam_provinces/data/nested-divisions.json", "file_sha256": _sha256(data)}
    return json.loads(data.read_text(encoding="utf-8")), source


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _type(name: str, types: dict[str, str] | tuple[str, ...]) -> str:
    for prefix in types:
        if name.lower().startswith(prefix.lower() + " "):  # the list has "Thành Phố Bắc Kạn" beside "Thành phố"
            return types[prefix] if isinstance(types, dict) else prefix.lower()
    raise ValueError(f"{name}: no unit type in the name")


def _write(path: Path, header: str, rows: list[dict]) -> None:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text("".join(f"# {line}\n" for line in header.splitlines()) + out.getvalue(), encoding="utf-8")


def _provenance(s: dict[str, str]) -> str:
    return (f"Source: PyPI {s['package']} {s['version']} ({s['wheel']}, sha256 {s['wheel_sha256']}),\n"
            f"{s['file']} sha256 {s['file_sha256']}. Made by tools/official_units.py.")


def old_units(data: list[dict], source: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Districts and communes of 0.6.0, written to schemas/2024/."""
    districts, communes = [], []
    for p in data:
        for d in p["districts"]:
            name = _nfc(d["name"])
            districts.append({"province_code": f"{p['code']:02d}", "district_code": f"{d['code']:03d}", "name_vi": name,
                              "unit_type": _type(name, DISTRICT_TYPES), "communes": len(d["wards"])})
            for c in d["wards"]:
                cname = _nfc(c["name"])
                kind = _type(cname, COMMUNE_TYPES)
                communes.append({"province_code": f"{p['code']:02d}", "district_code": f"{d['code']:03d}",
                                 "commune_code": f"{c['code']:05d}", "name_vi": cname, "unit_type": kind,
                                 "urban": "yes" if kind in URBAN else "no"})
    folder = ROOT / "schemas" / "2024"
    _write(folder / "districts.csv", f"The {len(districts)} districts (cấp huyện) of the 63 provinces before 1 July 2025, "
           "GSO codes; unit_type from the name;\ncommunes: how many communes the list gives (island districts: none).\n"
           + _provenance(source), districts)
    _write(folder / "communes.csv", f"The {len(communes)} communes (cấp xã: phường, thị trấn, xã) before 1 July 2025, "
           "GSO codes, in their district and province;\nunit_type from the name; urban = yes for phường and thị trấn.\n"
           + _provenance(source), communes)
    return districts, communes


def new_units(data: list[dict], source: dict[str, str]) -> list[dict]:
    """Communes of 2025.10.1, written to schemas/2025/communes.csv."""
    communes = []
    for p in data:
        for c in p["wards"]:
            name = _nfc(c["name"])
            kind = str(c["division_type"])
            if _type(name, COMMUNE_TYPES) != kind:
                raise ValueError(f"{name}: the name disagrees with division_type {kind}")
            communes.append({"province_code": f"{p['code']:02d}", "commune_code": f"{c['code']:05d}", "name_vi": name,
                             "unit_type": kind, "urban": "yes" if kind in URBAN else "no"})
    communes.sort(key=lambda r: (r["province_code"], r["commune_code"]))
    _write(ROOT / "schemas" / "2025" / "communes.csv",
           f"The {len(communes)} communes (phường, xã, đặc khu) of the 34 provinces from 1 July 2025, GSO codes;\n"
           "urban = yes for phường (a special zone, đặc khu, counts as rural).\n" + _provenance(source), communes)
    return communes


def mapping(old: list[dict], new: list[dict], source: dict[str, str]) -> list[dict]:
    """Each 2024 commune -> its 2025 commune (the rules of the module docstring)."""
    unit_of = {r["from_code"]: r["to_code"] for r in csv.DictReader(
        line for line in MERGER.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))}
    by_code = {c["commune_code"]: c for c in old}
    anchor: dict[str, str] = {}  # 2025 commune -> 2024 district it is anchored in
    for n in new:
        o = by_code.get(n["commune_code"])
        if o is not None and unit_of[o["province_code"]] == n["province_code"]:
            anchor[n["commune_code"]] = o["district_code"]
        elif n["unit_type"] != "đặc khu":
            near = min((c for c in old if unit_of[c["province_code"]] == n["province_code"]),
                       key=lambda c: (abs(int(c["commune_code"]) - int(n["commune_code"])), c["commune_code"]))
            anchor[n["commune_code"]] = near["district_code"]
    new_by = {n["commune_code"]: n for n in new}
    rows = []
    for o in old:
        unit = unit_of[o["province_code"]]
        code = o["commune_code"]
        if code in new_by and new_by[code]["province_code"] == unit:
            target, rule = new_by[code], "code"
        else:
            pool = [new_by[c] for c, d in anchor.items() if d == o["district_code"] and new_by[c]["province_code"] == unit]
            rule = "nearest code in district" if pool else "nearest code in unit"
            pool = pool or [n for n in new if n["province_code"] == unit and n["commune_code"] in anchor]
            target = min(pool, key=lambda n: (abs(int(n["commune_code"]) - int(code)), n["commune_code"]))
        rows.append({"from_province": o["province_code"], "from_district": o["district_code"], "from_commune": code,
                     "from_name": o["name_vi"], "to_province": unit, "to_commune": target["commune_code"],
                     "to_name": target["name_vi"], "rule": rule})
    _write(ROOT / "schemas" / "2025" / "commune_mapping.csv",
           f"Each of the {len(rows)} communes of 2024 -> the 2025 commune taken to contain it. The package lists no\n"
           "predecessors: rule `code` = the 2025 commune kept this commune's code; `nearest code in district` = the\n"
           "2025 commune anchored in the same 2024 district with the nearest code (GSO codes run in geographic order);\n"
           "`nearest code in unit` where the district has none. See tools/official_units.py.\n"
           + _provenance(source), rows)
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old_data, old_source = package_data(VERSIONS[2024], Path(tmp))
        new_data, new_source = package_data(VERSIONS[2025], Path(tmp))
    districts, old = old_units(old_data, old_source)
    new = new_units(new_data, new_source)
    rows = mapping(old, new, new_source)
    rules: dict[str, int] = {}
    for r in rows:
        rules[r["rule"]] = rules.get(r["rule"], 0) + 1
    print(json.dumps({"2024": old_source | {"districts": len(districts), "communes": len(old)},
                      "2025": new_source | {"communes": len(new), "mapping_rules": rules}}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
