DROP TABLE IF EXISTS cache_invalidations;
