DROP TABLE fx_rates;
