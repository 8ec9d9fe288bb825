"""The formats the venue and the centre both speak, in neither side.

The venue server and the central server are different machines run by different people;
they meet only through formats. Those the two servers exchange are defined here:

- `release`: the signed release request a venue sends and the wrapped release it gets back;
- `receipts`: the centre's signed upload receipt and the package log's hash chain;
- `response_package`: the sealed file of a venue's answers for one session;
- `journal_chain`: the hash chain over every save of an attempt (written at the venue,
  re-checked at the centre);
- `audit_chain`: the one hash-chain format of both sides' audit logs (and the readers of
  the two formats written before it).

The formats the centre's operator tools write and the venue reads live in `paperpack`, which
both sides import and which imports neither: the sealed package and its manifest, share cards,
the release code and record, and the start-delay approval (`paperpack.approval`, made by
`paperpack approve-delay`). The venue and the centre exchange no status or end-of-session
report of their own: the centre's status page reads the summary inside each response package
(`response_package.summarise`).

Rules (`tests/test_import_rules.py` enforces them): this package imports neither
`server.venue` nor `server.central` (nor `server.scoring`, `server.commands`, `server.demo`)
and no aiohttp; from `server` it uses only `server.errors` and `server.clock`. Its functions
raise typed errors (subclasses of `server.errors.CbtError`), never HTTP exceptions.
"""
