DROP TABLE IF EXISTS stripe_sweep_cursors;
