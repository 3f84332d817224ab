DROP TABLE revenue_segments_monthly;
DROP INDEX revenue_segments_daily_unfolded_idx;
ALTER TABLE revenue_segments_daily DROP COLUMN folded;
