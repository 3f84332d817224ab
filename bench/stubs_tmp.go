package main

import "context"

func benchEntitlement(ctx context.Context, c *config) error { return nil }
func benchRevenue(ctx context.Context, c *config) error     { return nil }
