-- The previous binary signs stateless cookies again with a key it
-- generates on first use; every server-side session ends here.
DROP TABLE dashboard_sessions;
