DROP TABLE IF EXISTS backfill_cursors;
