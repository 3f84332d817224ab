DROP TABLE IF EXISTS backfill_partitions;
