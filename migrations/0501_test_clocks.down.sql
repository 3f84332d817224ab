DROP INDEX IF EXISTS customers_test_clock_idx;
ALTER TABLE customers DROP COLUMN IF EXISTS test_clock_id;
DROP TABLE IF EXISTS stripe_test_clocks;
