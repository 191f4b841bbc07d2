"""Live fieldwork: batches of forms taken as they arrive during the survey window, validated with the annual
run's rules, reduced to the sufficient statistics of every estimate (which add), progress against the sample,
provisional figures with the annual run's design-based uncertainty, and a page.

    inbox.py       the inbox and the batches taken from it (content hash, validation, the season's silver)
    season.py      the season's folder: its ledger of batches and its sufficient statistics
    sufficient.py  the statistics a batch adds and the provisional estimates from them
    progress.py    forms received, valid and quarantined against the target sample, behind-schedule flags
    page.py        the offline fieldwork page
    database.py    the `fieldwork_*` tables of the DuckDB file
    live.py        one refresh: progress, provisional figures, tables, page
    split.py       a synthetic year split into timestamped batches (`sipas sample --fieldwork`)
    cli.py         `sipas fieldwork …`

The Prefect flow and deployment are in `sipas_pipeline.orchestration.fieldwork`.
"""
