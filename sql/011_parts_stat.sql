-- The stat of each registered part when its SHA-256 was last verified (at registration, or
-- when an open found the stat changed and the bytes still matched). Opening a warehouse
-- compares every part's stat with these and hashes only the parts whose stat changed, as
-- git does for its index: a part edited in place without changing its size (a flipped
-- byte) then shows at open instead of reading as wrong numbers. NULL for parts registered
-- before these columns existed: such a part is hashed at open until a writable open records
-- its stat. (A read-only open of a warehouse from before this file, which cannot add the
-- columns, compares each part's size only: docs/reliability.md.) Idempotent, applied at
-- every writable connect.
ALTER TABLE parts ADD COLUMN IF NOT EXISTS mtime_ns BIGINT;
ALTER TABLE parts ADD COLUMN IF NOT EXISTS ctime_ns BIGINT;
ALTER TABLE parts ADD COLUMN IF NOT EXISTS inode BIGINT;
