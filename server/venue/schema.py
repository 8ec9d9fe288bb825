"""Every table of the venue database, and the migrations that create them.

The SQL below is the schema's documentation: each column carries a comment with its meaning
and unit (SQLite keeps these comments in `sqlite_master`, so `.schema` shows them too).
Conventions (STYLE.md): tables plural, keys `<noun>_id`, times `*_at` as ISO-8601 UTC text
with milliseconds and a Z (`server.clock.iso`), durations `*_ms` as integers, JSON as
canonical JSON text (`paperpack.canonical.canonical_json`).

Add a change as a NEW migration function at the end (never edit one that has shipped):
`@migrations()` applies functions in the order they are defined.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("venue")

INITIAL = """
-- Venue-wide settings, one JSON value per key (e.g. central URL, venue id).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,              -- setting name, dotted lower case (e.g. 'central.url')
    value TEXT NOT NULL,               -- canonical JSON of the value
    updated_at TEXT NOT NULL           -- when it was last set (ISO-8601 UTC)
);

-- Random seeds recorded for verifiable draws (seats, invigilators); published with the plan.
CREATE TABLE seeds (
    seed_id INTEGER PRIMARY KEY,       -- row number
    session_id TEXT NOT NULL,          -- exam session the draw is for
    purpose TEXT NOT NULL,             -- 'seats' or 'invigilators'
    seed TEXT NOT NULL,                -- the seed, 64 hex characters (32 random bytes)
    created_at TEXT NOT NULL,          -- when it was drawn (ISO-8601 UTC)
    created_by TEXT NOT NULL           -- staff login (or 'cli:<user>') that ran the draw
);

-- Imported packages (signed manifest + fragments). Nothing here is decrypted.
CREATE TABLE packages (
    package_id TEXT PRIMARY KEY,       -- hex SHA-256 of the canonical signed manifest
    session_id TEXT NOT NULL,          -- exam session named in the manifest
    venue_id TEXT NOT NULL,            -- venue the package is bound to (must be this venue)
    kind TEXT NOT NULL DEFAULT 'real', -- 'real' or 'practice' (dry run, art. 21(3))
    manifest_version INTEGER NOT NULL, -- the manifest's version; a lower one is refused later
    manifest TEXT NOT NULL,            -- the signed manifest document, canonical JSON
    directory TEXT NOT NULL,           -- where the verified fragments are stored, relative to DIR
    fragment_count INTEGER NOT NULL,   -- number of fragments stored and verified
    size_bytes INTEGER NOT NULL,       -- total size of the stored fragments, bytes
    imported_at TEXT NOT NULL,         -- when the import finished (ISO-8601 UTC)
    imported_by TEXT NOT NULL          -- staff login or 'cli:<user>' that imported it
);

-- Exam sessions (a scheduled sitting of one paper; never an HTTP session).
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,       -- session id from the central schedule / manifest
    subject TEXT NOT NULL,             -- subject code; roster rows must match it
    title TEXT NOT NULL DEFAULT '',    -- human title shown to staff and candidates
    paper_kind TEXT NOT NULL DEFAULT 'standard', -- 'standard' or 'audio_video' (art. 29 rules)
    package_id TEXT REFERENCES packages(package_id), -- package that carries the paper, if imported
    window_not_before TEXT,            -- unlock window opens (ISO-8601 UTC), from the manifest
    window_not_after TEXT,             -- unlock window closes (ISO-8601 UTC), from the manifest
    starts_at TEXT,                    -- scheduled start (ISO-8601 UTC), before any delay
    duration_ms INTEGER,               -- scheduled answering time, milliseconds
    start_delay_ms INTEGER NOT NULL DEFAULT 0, -- start delay in force, milliseconds (art. 31)
    rules TEXT NOT NULL DEFAULT '{}',  -- canonical JSON of per-session rule overrides
    status TEXT NOT NULL DEFAULT 'scheduled', -- 'scheduled','unlocked','running','ended'
    unlocked_at TEXT,                  -- when the unlock ceremony succeeded (ISO-8601 UTC)
    ended_at TEXT                      -- when the session was closed (ISO-8601 UTC)
);

-- Start delays (art. 31): up to 30 min on the venue's authority, more only with an approval code.
CREATE TABLE start_delays (
    delay_id INTEGER PRIMARY KEY,      -- row number
    session_id TEXT NOT NULL REFERENCES sessions(session_id), -- delayed session
    delay_ms INTEGER NOT NULL,         -- total delay from the scheduled start, milliseconds
    reason TEXT NOT NULL,              -- why, in words
    approval TEXT,                     -- centre-signed approval code when delay_ms > 30 min
    decided_by TEXT NOT NULL,          -- staff login that set the delay
    decided_at TEXT NOT NULL           -- when (ISO-8601 UTC)
);

-- Rooms of the venue (from rooms.yaml); seats are numbered row by row from 1.
CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,          -- short room code, e.g. 'R101'
    name TEXT NOT NULL DEFAULT '',     -- human name
    rows INTEGER NOT NULL,             -- number of seat rows
    columns INTEGER NOT NULL,          -- seats per row
    spare_seats INTEGER NOT NULL DEFAULT 0, -- seats kept empty at the end for moves (count)
    invigilators INTEGER NOT NULL DEFAULT 2 -- invigilators the room needs (art. 20: >= 2)
);

-- The roster: candidates registered for a session.
CREATE TABLE candidates (
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- admission ticket number (login name)
    name TEXT NOT NULL,                -- full name as registered
    id_type TEXT NOT NULL DEFAULT 'resident_id', -- 'resident_id' (GB 11643) or another ID type
    id_number TEXT NOT NULL,           -- ID number (personal data: never logged, masked in exports)
    subject TEXT NOT NULL,             -- subject code; equals the session's subject
    photo TEXT NOT NULL DEFAULT '',    -- photo file name relative to DIR/photos, or ''
    form_id TEXT,                      -- parallel form assigned (papers with forms), else NULL
    row_no INTEGER NOT NULL,           -- line number in the imported CSV (for error messages)
    imported_at TEXT NOT NULL,         -- when the roster was imported (ISO-8601 UTC)
    PRIMARY KEY (session_id, ticket)
);

-- Seat plans: one random draw per session, reproducible from its seed.
CREATE TABLE seat_plans (
    plan_id INTEGER PRIMARY KEY,       -- row number
    session_id TEXT NOT NULL,          -- exam session
    seed_id INTEGER NOT NULL REFERENCES seeds(seed_id), -- the recorded seed used
    algorithm TEXT NOT NULL,           -- name + version of the draw, e.g. 'hmac-sha256-sort/1'
    roster_hash TEXT NOT NULL,         -- hex SHA-256 of the canonical sorted ticket list
    rooms_hash TEXT NOT NULL,          -- hex SHA-256 of the canonical room list used
    plan_hash TEXT NOT NULL,           -- hex SHA-256 of the canonical drawn assignment
    created_at TEXT NOT NULL,          -- when drawn (ISO-8601 UTC)
    created_by TEXT NOT NULL           -- who ran the draw
);

-- Current seat of each candidate (the draw, then any audited moves applied).
CREATE TABLE seats (
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- candidate ticket
    plan_id INTEGER NOT NULL REFERENCES seat_plans(plan_id), -- draw this seat comes from
    room_id TEXT NOT NULL REFERENCES rooms(room_id), -- room
    seat_no INTEGER NOT NULL,          -- seat number in the room, 1-based, row by row
    row_no INTEGER NOT NULL,           -- seat row, 1-based
    column_no INTEGER NOT NULL,        -- seat column, 1-based
    moved INTEGER NOT NULL DEFAULT 0,  -- 1 if a manual (audited) move put the candidate here
    PRIMARY KEY (session_id, ticket),
    UNIQUE (session_id, room_id, seat_no)
);

-- Manual seat changes: the only exception to the draw, each with a reason (art. 21(1)).
CREATE TABLE seat_moves (
    move_id INTEGER PRIMARY KEY,       -- row number; moves replay in this order
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- candidate moved
    from_room_id TEXT NOT NULL,        -- previous room
    from_seat_no INTEGER NOT NULL,     -- previous seat number
    to_room_id TEXT NOT NULL,          -- new room
    to_seat_no INTEGER NOT NULL,       -- new seat number
    reason TEXT NOT NULL,              -- why (e.g. machine failure), in words
    moved_by TEXT NOT NULL,            -- staff login that moved the candidate
    moved_at TEXT NOT NULL             -- when (ISO-8601 UTC)
);

-- Staff accounts (art. 19): chief examiner, system administrator, invigilator.
CREATE TABLE staff (
    staff_id INTEGER PRIMARY KEY,      -- row number
    login TEXT NOT NULL UNIQUE,        -- login name
    name TEXT NOT NULL,                -- full name
    role TEXT NOT NULL,                -- 'chief_examiner', 'system_administrator' or 'invigilator'
    password_hash TEXT NOT NULL,       -- argon2id hash (PHC string); the password is never stored
    active INTEGER NOT NULL DEFAULT 1, -- 0 once the account is disabled
    conflict_declared INTEGER NOT NULL DEFAULT 0, -- 1 = conflict of interest declared (art. 48)
    created_at TEXT NOT NULL           -- when the account was created (ISO-8601 UTC)
);

-- Staff login sessions (cookie-based). Only hashes of the tokens are stored.
CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,       -- hex SHA-256 of the session cookie token
    csrf_hash TEXT NOT NULL,           -- hex SHA-256 of the CSRF token returned at login
    staff_id INTEGER NOT NULL REFERENCES staff(staff_id), -- who is logged in
    created_at TEXT NOT NULL,          -- login time (ISO-8601 UTC)
    expires_at TEXT NOT NULL,          -- absolute expiry (ISO-8601 UTC)
    last_seen_at TEXT NOT NULL,        -- last authenticated request (ISO-8601 UTC)
    remote TEXT NOT NULL DEFAULT '',   -- client IP address at login
    ended_at TEXT                      -- logout time (ISO-8601 UTC), NULL while valid
);

-- Failed staff logins, for rate limiting per login and per client address.
CREATE TABLE login_failures (
    failure_id INTEGER PRIMARY KEY,    -- row number
    login TEXT NOT NULL,               -- login name tried (may not exist)
    remote TEXT NOT NULL,              -- client IP address
    failed_at TEXT NOT NULL            -- when (ISO-8601 UTC)
);

-- Staff assigned to rooms by the verifiable draw of art. 20.
CREATE TABLE invigilator_assignments (
    session_id TEXT NOT NULL,          -- exam session
    staff_id INTEGER NOT NULL REFERENCES staff(staff_id), -- invigilator drawn
    room_id TEXT NOT NULL REFERENCES rooms(room_id), -- room drawn
    seed_id INTEGER NOT NULL REFERENCES seeds(seed_id), -- seed of the draw
    PRIMARY KEY (session_id, staff_id)
);

-- Unlock ceremonies (art. 23-24): opened by the system administrator, k shares entered.
CREATE TABLE ceremonies (
    ceremony_id INTEGER PRIMARY KEY,   -- row number
    session_id TEXT NOT NULL REFERENCES sessions(session_id), -- session being unlocked
    package_id TEXT NOT NULL REFERENCES packages(package_id), -- package being unlocked
    dry_run INTEGER NOT NULL DEFAULT 0, -- 1 for a practice package (art. 21(3))
    status TEXT NOT NULL,              -- 'open', 'unlocked', 'reset', 'expired'
    opened_by TEXT NOT NULL,           -- staff login of the system administrator
    opened_at TEXT NOT NULL,           -- when opened (ISO-8601 UTC)
    expires_at TEXT NOT NULL,          -- when it times out and resets (ISO-8601 UTC)
    release_source TEXT,               -- 'online' or 'code' once the time release is in
    closed_at TEXT                     -- when it ended, any status but open (ISO-8601 UTC)
);

-- Shares entered in a ceremony. The share itself is held in memory only, never stored.
CREATE TABLE ceremony_shares (
    ceremony_id INTEGER NOT NULL REFERENCES ceremonies(ceremony_id), -- the ceremony
    holder_no INTEGER NOT NULL,        -- share holder number printed on the card, 1-based
    staff_id INTEGER NOT NULL REFERENCES staff(staff_id), -- supervisor who entered it
    entered_at TEXT NOT NULL,          -- when (ISO-8601 UTC)
    PRIMARY KEY (ceremony_id, holder_no),
    UNIQUE (ceremony_id, staff_id)
);

-- Attempts: one candidate sitting one paper.
CREATE TABLE attempts (
    attempt_id TEXT PRIMARY KEY,       -- random opaque id (hex)
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- candidate ticket
    token_hash TEXT,                   -- hex SHA-256 of the current bearer token; NULL = logged out
    client TEXT NOT NULL DEFAULT '',   -- machine of the current login (IP address)
    status TEXT NOT NULL DEFAULT 'logged_in', -- 'logged_in','answering','submitted','closed'
    identity_checked_by TEXT,          -- staff login that checked the ID (art. 30), if done
    logged_in_at TEXT NOT NULL,        -- first login (ISO-8601 UTC)
    started_at TEXT,                   -- first time the paper was served (ISO-8601 UTC)
    time_granted_ms INTEGER NOT NULL DEFAULT 0, -- total lost time granted, milliseconds
    last_seen_at TEXT,                 -- last request or heartbeat (ISO-8601 UTC)
    last_seq INTEGER NOT NULL DEFAULT 0, -- highest journal seq acknowledged
    submitted_at TEXT,                 -- when submitted or closed (ISO-8601 UTC)
    UNIQUE (session_id, ticket)
);

-- The journal: every save, append-only, hash-chained per attempt (see server.venue.journal).
CREATE TABLE journal (
    attempt_id TEXT NOT NULL REFERENCES attempts(attempt_id), -- attempt saved
    seq INTEGER NOT NULL,              -- client sequence number, 1, 2, 3... per attempt
    position INTEGER NOT NULL,         -- place in the attempt's hash chain (arrival order), 1-based
    saved_at TEXT NOT NULL,            -- server time the save was received (ISO-8601 UTC)
    responses TEXT NOT NULL,           -- canonical JSON {item id: answer} of this save
    size_bytes INTEGER NOT NULL,       -- length of `responses`, bytes
    prev_hash TEXT NOT NULL,           -- `hash` at position - 1 (64 zeros at position 1)
    hash TEXT NOT NULL,                -- hex SHA-256 of canonical JSON, see journal.py
    PRIMARY KEY (attempt_id, seq),
    UNIQUE (attempt_id, position)
);

-- Current answers, derived from the journal in the same transaction as each save.
CREATE TABLE responses (
    attempt_id TEXT NOT NULL REFERENCES attempts(attempt_id), -- attempt
    item_id TEXT NOT NULL,             -- item the answer is for (id as the journal holds it)
    answer TEXT NOT NULL,              -- canonical JSON of the answer
    seq INTEGER NOT NULL,              -- journal seq that last set it
    updated_at TEXT NOT NULL,          -- time of that save (ISO-8601 UTC)
    PRIMARY KEY (attempt_id, item_id)
);

-- Submissions: the final answers of an attempt and the receipt given to the candidate.
CREATE TABLE submissions (
    attempt_id TEXT PRIMARY KEY REFERENCES attempts(attempt_id), -- attempt
    submitted_at TEXT NOT NULL,        -- when (ISO-8601 UTC)
    how TEXT NOT NULL,                 -- 'candidate', 'time_up' or 'invigilator'
    final_seq INTEGER NOT NULL,        -- last journal seq included
    answers TEXT NOT NULL,             -- canonical JSON {item id: answer} at submission
    receipt TEXT NOT NULL              -- hex SHA-256 of `answers` (shown to the candidate)
);

-- Incidents (machine failure, power cut, ...) per candidate, room or venue (art. 22, 28).
CREATE TABLE incidents (
    incident_id INTEGER PRIMARY KEY,   -- row number
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT,                       -- candidate concerned, or NULL
    room_id TEXT,                      -- room concerned, or NULL for the venue
    kind TEXT NOT NULL,                -- type from the incident list
    text TEXT NOT NULL DEFAULT '',     -- description
    evidence TEXT NOT NULL DEFAULT '', -- reference to evidence files (video etc.), or ''
    recorded_by TEXT NOT NULL,         -- staff login
    recorded_at TEXT NOT NULL          -- when (ISO-8601 UTC)
);

-- Violations by candidates (art. 32); they flow into scoring.
CREATE TABLE violations (
    violation_id INTEGER PRIMARY KEY,  -- row number
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- candidate
    kind TEXT NOT NULL,                -- type from the violation list
    text TEXT NOT NULL DEFAULT '',     -- description
    recorded_by TEXT NOT NULL,         -- staff login
    recorded_at TEXT NOT NULL          -- when (ISO-8601 UTC)
);

-- Lost time granted to one attempt by an invigilator, with a reason.
CREATE TABLE time_grants (
    grant_id INTEGER PRIMARY KEY,      -- row number
    attempt_id TEXT NOT NULL REFERENCES attempts(attempt_id), -- attempt extended
    granted_ms INTEGER NOT NULL,       -- time added, milliseconds (> 0)
    reason TEXT NOT NULL,              -- why, in words
    granted_by TEXT NOT NULL,          -- staff login
    granted_at TEXT NOT NULL           -- when (ISO-8601 UTC)
);

-- Pauses of a room or of the whole venue; time paused is added to the attempts affected.
CREATE TABLE pauses (
    pause_id INTEGER PRIMARY KEY,      -- row number
    session_id TEXT NOT NULL,          -- exam session
    room_id TEXT,                      -- room paused, NULL = the whole venue
    reason TEXT NOT NULL,              -- why, in words
    paused_by TEXT NOT NULL,           -- staff login
    paused_at TEXT NOT NULL,           -- when (ISO-8601 UTC)
    resumed_by TEXT,                   -- staff login, NULL while paused
    resumed_at TEXT                    -- when (ISO-8601 UTC), NULL while paused
);

-- Candidates marked absent.
CREATE TABLE absences (
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- candidate
    marked_by TEXT NOT NULL,           -- staff login
    marked_at TEXT NOT NULL,           -- when (ISO-8601 UTC)
    PRIMARY KEY (session_id, ticket)
);

-- Append-only, hash-chained audit log (server.audit).
CREATE TABLE audit_events (
    event_id INTEGER PRIMARY KEY,      -- position in the chain, 1, 2, 3...
    at TEXT NOT NULL,                  -- when (ISO-8601 UTC)
    actor TEXT NOT NULL,               -- who: staff login, 'candidate:T', 'system', 'cli:U'
    action TEXT NOT NULL,              -- what, dotted verb, e.g. 'seat.moved'
    object TEXT NOT NULL,              -- on what, e.g. 'session:S1/ticket:T1'
    details TEXT NOT NULL,             -- canonical JSON of details (hashes, never secrets)
    prev_hash TEXT NOT NULL,           -- `hash` of the previous event (64 zeros for the first)
    hash TEXT NOT NULL                 -- hex SHA-256 over canonical JSON of the fields above
);

-- Messages waiting to go to the central server (status reports, uploads), sent in order.
CREATE TABLE outbox (
    outbox_id INTEGER PRIMARY KEY,     -- row number; sent in this order
    kind TEXT NOT NULL,                -- 'status', 'upload', ...
    payload TEXT NOT NULL,             -- canonical JSON of the message
    created_at TEXT NOT NULL,          -- when queued (ISO-8601 UTC)
    tries INTEGER NOT NULL DEFAULT 0,  -- delivery attempts so far (count)
    last_error TEXT NOT NULL DEFAULT '', -- last failure, one line
    sent_at TEXT                       -- when the centre acknowledged it (ISO-8601 UTC)
);

-- Exported response packages and the central receipts that free the venue's copy.
CREATE TABLE exports (
    export_id INTEGER PRIMARY KEY,     -- row number
    session_id TEXT NOT NULL,          -- exam session
    file TEXT NOT NULL,                -- path of the signed, encrypted package
    package_hash TEXT NOT NULL,        -- hex SHA-256 of the package file
    attempts INTEGER NOT NULL,         -- attempts included (count)
    created_at TEXT NOT NULL,          -- when exported (ISO-8601 UTC)
    created_by TEXT NOT NULL,          -- who exported it
    receipt TEXT,                      -- the central server's signed receipt (JSON), once uploaded
    receipt_verified_at TEXT           -- when the receipt signature was verified (ISO-8601 UTC)
);

CREATE INDEX journal_by_time ON journal (saved_at);
CREATE INDEX candidates_by_ticket ON candidates (ticket);
CREATE INDEX attempts_by_token ON attempts (token_hash);
CREATE INDEX staff_sessions_by_staff ON staff_sessions (staff_id);
CREATE INDEX login_failures_by_login ON login_failures (login, failed_at);
CREATE INDEX login_failures_by_remote ON login_failures (remote, failed_at);
CREATE INDEX audit_events_by_object ON audit_events (object);

-- Append-only tables refuse updates and deletes (a tamperer who drops these triggers is
-- still caught by the hash chains: `cbt audit verify`, journal.verify_chain).
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
"""


@migrations()
def m001_initial(db: Database) -> None:
    """Create every venue table."""
    db.executescript(INITIAL)


VARIANTS = """
-- Each candidate's variant digest, recorded in the unlock's transaction, so an export made
-- after a restart (the paper itself lives only in memory) still lets the centre check every
-- candidate's variant against the one it recomputes.
CREATE TABLE variants (
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- candidate ticket
    form_id TEXT,                      -- parallel form of the variant, NULL for one form
    digest TEXT NOT NULL,              -- hex digest of the candidate's variant (paperpack.variants)
    prepared_at TEXT NOT NULL,         -- when the unlock prepared it (ISO-8601 UTC)
    PRIMARY KEY (session_id, ticket)
);
"""


@migrations()
def m002_variants(db: Database) -> None:
    """Record every candidate's variant digest at the unlock."""
    db.executescript(VARIANTS)


AUDIT_CHAIN_FORMAT = """
-- The audit log again, with the format of each event's hash: the one audit-chain format the
-- venue and the centre both write (server.protocol.audit_chain). Rebuilt rather than
-- altered, so the stored schema keeps a comment on every column; event_id stays the rowid.
CREATE TABLE audit_events_v2 (
    event_id INTEGER PRIMARY KEY,      -- position in the chain, 1, 2, 3...
    at TEXT NOT NULL,                  -- when (ISO-8601 UTC)
    actor TEXT NOT NULL,               -- who: staff login, 'candidate:T', 'system', 'cli:U'
    action TEXT NOT NULL,              -- what, dotted verb, e.g. 'seat.moved'
    object TEXT NOT NULL,              -- on what, e.g. 'session:S1/ticket:T1'
    details TEXT NOT NULL,             -- canonical JSON of details (hashes, never secrets)
    prev_hash TEXT NOT NULL,           -- `hash` of the previous event (64 zeros for the first)
    hash TEXT NOT NULL,                -- hex SHA-256 of the event in `chain_format`
    chain_format TEXT NOT NULL         -- 'cbt-audit-v2'; unstated (events from before it):
        DEFAULT 'cbt-audit-venue-v1'   -- the venue's legacy format
);
INSERT INTO audit_events_v2 (event_id, at, actor, action, object, details, prev_hash, hash)
    SELECT event_id, at, actor, action, object, details, prev_hash, hash
    FROM audit_events ORDER BY event_id;
DROP TABLE audit_events;
ALTER TABLE audit_events_v2 RENAME TO audit_events;
CREATE INDEX audit_events_by_object ON audit_events (object);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
"""


@migrations()
def m003_audit_chain_format(db: Database) -> None:
    """Record the chain format of every audit event (older events: the venue's legacy one)."""
    db.executescript(AUDIT_CHAIN_FORMAT)


OUTAGES = """
-- Times the venue server was down while a session's paper was open (server.venue.restart):
-- from the last moment the stopped server was known alive to the moment candidates could
-- answer again (the paper open again). While `reopened_at` is NULL every open attempt of the
-- session is paused; when it is set, the same span is granted to each of them (time_grants,
-- reason 'venue-restart'), in one transaction, so the span always counts exactly once.
CREATE TABLE outages (
    outage_id INTEGER PRIMARY KEY,     -- row number
    session_id TEXT NOT NULL REFERENCES sessions(session_id), -- session whose paper was open
    down_at TEXT NOT NULL,             -- last alive mark of the stopped server (ISO-8601 UTC)
    up_at TEXT NOT NULL,               -- when the new server started (ISO-8601 UTC)
    reopened_at TEXT,                  -- paper open again (ISO-8601 UTC); NULL = still paused
    reopened_by TEXT,                  -- 'sealed-key' or 'ceremony:<ceremony_id>'
    granted_ms INTEGER,                -- time given back to each open attempt, milliseconds
    attempts INTEGER,                  -- open attempts that got it (count)
    incident_id INTEGER                -- the venue incident recording it (incidents.incident_id)
);
"""


@migrations()
def m004_outages(db: Database) -> None:
    """Record server outages during an exam, paused and then given back to every attempt."""
    db.executescript(OUTAGES)


RECEIPT_FORMAT = """
-- Which candidate-receipt format `submissions.receipt` is in (server.protocol.candidate_receipt):
-- 'attempt-v2' binds session, ticket and attempt as well as the answers; rows from before it
-- are 'answers-v1' (the answers alone).
-- Rebuilt rather than altered, so the stored schema keeps a comment on every column.
CREATE TABLE submissions_v2 (
    attempt_id TEXT PRIMARY KEY REFERENCES attempts(attempt_id), -- attempt
    submitted_at TEXT NOT NULL,        -- when (ISO-8601 UTC)
    how TEXT NOT NULL,                 -- 'candidate', 'time_up' or 'invigilator'
    final_seq INTEGER NOT NULL,        -- last journal seq included
    answers TEXT NOT NULL,             -- canonical JSON {item id: answer} at submission
    receipt TEXT NOT NULL,             -- hex SHA-256 in `receipt_format` (shown to the candidate)
    receipt_format TEXT NOT NULL       -- 'attempt-v2' (session, ticket, attempt and answers)
        DEFAULT 'answers-v1'           -- or, for rows from before it, the answers alone
);
INSERT INTO submissions_v2 (attempt_id, submitted_at, how, final_seq, answers, receipt)
    SELECT attempt_id, submitted_at, how, final_seq, answers, receipt FROM submissions;
DROP TABLE submissions;
ALTER TABLE submissions_v2 RENAME TO submissions;
"""


@migrations()
def m005_receipt_format(db: Database) -> None:
    """Record the format of each candidate receipt; new ones bind the attempt (format 2)."""
    db.executescript(RECEIPT_FORMAT)


CANDIDATE_IDS = """
-- The roster again, with the ID number kept only as login needs it (issue 16, F12; art. 46-47):
-- a keyed hash and a masked form (server.venue.id_protect). Rebuilt rather than altered, so the
-- stored schema keeps a comment on every column. Plaintext numbers copied over here are
-- replaced by the venue when it next opens the database (it holds the key; SQL does not).
CREATE TABLE candidates_v2 (
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- admission ticket number (login name)
    name TEXT NOT NULL,                -- full name as registered
    id_type TEXT NOT NULL DEFAULT 'resident_id', -- 'resident_id' (GB 11643) or another ID type
    id_hash TEXT NOT NULL DEFAULT '',  -- hex HMAC-SHA256 of the normalised ID number, venue's key
    id_masked TEXT NOT NULL DEFAULT '', -- the ID number masked for display: first 3, last 4
    id_number TEXT NOT NULL DEFAULT '', -- always '' once opened: plaintext from an older build
    subject TEXT NOT NULL,             -- subject code; equals the session's subject
    photo TEXT NOT NULL DEFAULT '',    -- photo file name relative to DIR/photos, or ''
    form_id TEXT,                      -- parallel form assigned (papers with forms), else NULL
    row_no INTEGER NOT NULL,           -- line number in the imported CSV (for error messages)
    imported_at TEXT NOT NULL,         -- when the roster was imported (ISO-8601 UTC)
    PRIMARY KEY (session_id, ticket)
);
INSERT INTO candidates_v2 (session_id, ticket, name, id_type, id_number, subject, photo,
    form_id, row_no, imported_at)
    SELECT session_id, ticket, name, id_type, id_number, subject, photo, form_id, row_no,
        imported_at FROM candidates;
DROP TABLE candidates;
ALTER TABLE candidates_v2 RENAME TO candidates;
CREATE INDEX candidates_by_ticket ON candidates (ticket);
"""


@migrations()
def m006_candidate_id_hash(db: Database) -> None:
    """Keep candidates' ID numbers as a keyed hash and a masked form only (F12)."""
    db.executescript(CANDIDATE_IDS)


ROOM_RULES = """
-- Identity checks (art. 30): each verify or refuse by an invigilator, who and when. A verified
-- check also sets attempts.identity_checked_by; the latest row per candidate is in force.
CREATE TABLE identity_checks (
    check_id INTEGER PRIMARY KEY,      -- row number; the latest per candidate is in force
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- candidate checked
    attempt_id TEXT REFERENCES attempts(attempt_id), -- the attempt logged in at the time
    outcome TEXT NOT NULL,             -- 'verified' (photo and ID match) or 'refused'
    note TEXT NOT NULL DEFAULT '',     -- what the invigilator noted, in words (refusals)
    checked_by TEXT NOT NULL,          -- staff login that checked
    checked_at TEXT NOT NULL           -- when (ISO-8601 UTC)
);
CREATE INDEX identity_checks_by_ticket ON identity_checks (session_id, ticket);

-- Room-wide time grants (art. 31): one action gives every open attempt of a room the same
-- time (a power cut); each attempt's share is a time_grants row listed in room_grant_members.
CREATE TABLE room_grants (
    room_grant_id INTEGER PRIMARY KEY, -- row number
    session_id TEXT NOT NULL,          -- exam session
    room_id TEXT NOT NULL,             -- room whose candidates got the time
    granted_ms INTEGER NOT NULL,       -- time added to each, milliseconds (> 0)
    reason TEXT NOT NULL,              -- why, in words
    attempts INTEGER NOT NULL,         -- open attempts that got it (count)
    granted_by TEXT NOT NULL,          -- staff login
    granted_at TEXT NOT NULL           -- when (ISO-8601 UTC)
);
CREATE TABLE room_grant_members (
    room_grant_id INTEGER NOT NULL REFERENCES room_grants(room_grant_id), -- the room grant
    grant_id INTEGER NOT NULL REFERENCES time_grants(grant_id), -- one attempt's time_grants row
    PRIMARY KEY (room_grant_id, grant_id)
);

-- Centre approvals entered for a session's time changes over the limit (art. 31): the signed
-- code itself is kept, checked again (expiry) each time it is relied on.
CREATE TABLE time_approvals (
    approval_id INTEGER PRIMARY KEY,   -- row number
    session_id TEXT NOT NULL,          -- exam session
    approved_ms INTEGER NOT NULL,      -- total time changes the centre approved, milliseconds
    expires_at TEXT NOT NULL,          -- the approval's expiry (ISO-8601 UTC)
    code TEXT NOT NULL,                -- the centre-signed approval code (paperpack.approval)
    entered_by TEXT NOT NULL,          -- staff login that entered it
    entered_at TEXT NOT NULL           -- when (ISO-8601 UTC)
);
"""


@migrations()
def m007_room_rules(db: Database) -> None:
    """Identity checks, room-wide grants and the centre's approvals of time changes."""
    db.executescript(ROOM_RULES)


RECEIVING = """
-- Each package import, a two-person act (art. 23(4)): the system administrator imports it
-- (staged: verified and stored, not in force) and another staff login confirms it.
CREATE TABLE package_imports (
    import_id INTEGER PRIMARY KEY,     -- row number
    package_id TEXT NOT NULL,          -- the manifest's package id (packages.package_id)
    session_id TEXT NOT NULL,          -- exam session the manifest names
    manifest_version INTEGER NOT NULL, -- the manifest's version
    manifest_sha256 TEXT NOT NULL,     -- hex SHA-256 of manifest.json as imported ('' before m008)
    practice INTEGER NOT NULL DEFAULT 0, -- 1: the signed manifest says practice (art. 21(3))
    manifest TEXT NOT NULL,            -- the signed manifest document, canonical JSON
    directory TEXT NOT NULL,           -- where the verified files are stored, relative to DIR
    fragment_count INTEGER NOT NULL,   -- number of fragments stored and verified
    size_bytes INTEGER NOT NULL,       -- total size of the stored fragments, bytes
    imported_by TEXT NOT NULL,         -- staff login of the administrator who imported it
    imported_at TEXT NOT NULL,         -- when it was staged (ISO-8601 UTC)
    confirmed_by TEXT,                 -- staff login of the second person; NULL while pending
    confirmed_at TEXT,                 -- when it was confirmed (ISO-8601 UTC), NULL while pending
    status TEXT NOT NULL               -- 'pending','in_force','replaced' (by a newer),'superseded'
);
INSERT INTO package_imports (package_id, session_id, manifest_version, manifest_sha256,
    practice, manifest, directory, fragment_count, size_bytes, imported_by, imported_at,
    status)
    SELECT package_id, session_id, manifest_version, '', kind = 'practice', manifest,
        directory, fragment_count, size_bytes, imported_by, imported_at, 'in_force'
    FROM packages ORDER BY imported_at;

-- Conflicts of interest declared by staff (art. 48): no invigilating in the rooms concerned,
-- no share card at all.
CREATE TABLE staff_conflicts (
    conflict_id INTEGER PRIMARY KEY,   -- row number
    staff_id INTEGER NOT NULL REFERENCES staff(staff_id), -- who declared it
    room_id TEXT,                      -- room concerned (e.g. a relative sits there); NULL = all
    reason TEXT NOT NULL,              -- why, in words (never a candidate's ID number)
    declared_by TEXT NOT NULL,         -- who recorded it ('cli:<user>' or a staff login)
    declared_at TEXT NOT NULL          -- when (ISO-8601 UTC)
);

-- The inspection before the exam (art. 21(3)): the signed checklist, signed off by two logins.
CREATE TABLE inspection_signoffs (
    session_id TEXT NOT NULL,          -- the real session inspected
    staff_id INTEGER NOT NULL REFERENCES staff(staff_id), -- who signed it off
    login TEXT NOT NULL,               -- their login, as it was then
    checklist_hash TEXT NOT NULL,      -- hex SHA-256 of the canonical JSON checklist signed off
    signed_at TEXT NOT NULL,           -- when (ISO-8601 UTC)
    PRIMARY KEY (session_id, staff_id)
);
"""


@migrations()
def m008_receiving(db: Database) -> None:
    """Two-person package imports, staff conflicts of interest, inspection sign-offs."""
    db.executescript(RECEIVING)


VIOLATION_HANDLING = """
-- Violations with the chief examiner's confirmation and proposed handling (art. 32): kinds and
-- handlings from server.protocol.violation_rules. Rebuilt rather than altered, so the stored
-- schema keeps a comment on every column; violation_id stays the rowid.
CREATE TABLE violations_v2 (
    violation_id INTEGER PRIMARY KEY,  -- row number
    session_id TEXT NOT NULL,          -- exam session
    ticket TEXT NOT NULL,              -- candidate
    kind TEXT NOT NULL,                -- type from the violation rules
    text TEXT NOT NULL DEFAULT '',     -- description
    recorded_by TEXT NOT NULL,         -- staff login
    recorded_at TEXT NOT NULL,         -- when (ISO-8601 UTC)
    handling TEXT,                     -- proposed by the chief examiner; NULL until confirmed
    confirmed_by TEXT,                 -- the chief examiner's login, NULL until confirmed
    confirmed_at TEXT                  -- when confirmed (ISO-8601 UTC), NULL until then
);
INSERT INTO violations_v2 (violation_id, session_id, ticket, kind, text, recorded_by,
                           recorded_at)
    SELECT violation_id, session_id, ticket, kind, text, recorded_by, recorded_at
    FROM violations ORDER BY violation_id;
DROP TABLE violations;
ALTER TABLE violations_v2 RENAME TO violations;
"""


@migrations()
def m009_violation_handling(db: Database) -> None:
    """The chief examiner confirms each violation and proposes its handling (art. 32)."""
    db.executescript(VIOLATION_HANDLING)


def venue_tables() -> list[str]:
    """The names of the tables the migrations create, in order (for tests and docs)."""
    names = []
    for line in (INITIAL + VARIANTS + OUTAGES + ROOM_RULES + RECEIVING + HEARTBEATS).splitlines():
        if line.startswith("CREATE TABLE "):
            names.append(line.split()[2])
    return names


HEARTBEATS = """
-- The live line to the centre (issue 14, point 4): messages queued in order, sent when the
-- centre is reachable, each once (the centre keeps one per (venue, seq)).
CREATE TABLE heartbeat_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, -- the message's number (its idempotency key)
    kind TEXT NOT NULL,                -- 'heartbeat' (every minute) or 'serious' (at once)
    body TEXT NOT NULL,                -- the message (server.protocol.heartbeat), JSON
    serious_upto INTEGER NOT NULL DEFAULT 0, -- highest violation_id whose seriousness it carries
    created_at TEXT NOT NULL,          -- when it was queued (ISO-8601 UTC)
    sent_at TEXT                       -- when the centre acknowledged it, NULL while waiting
);
CREATE INDEX heartbeat_queue_waiting ON heartbeat_queue (sent_at, seq);
"""


@migrations()
def m010_heartbeat_queue(db: Database) -> None:
    """Queue the live line's messages to the centre (issue 14, point 4)."""
    db.executescript(HEARTBEATS)
