DROP VIEW catalog_plan_names;
DROP TABLE catalog_prices;
DROP TABLE catalog_products;
