DROP TABLE revenue_segments_daily;
DROP TABLE revenue_facts;
