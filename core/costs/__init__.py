"""What runs cost: the price catalog and actual costs (pricing), forecasts (forecasting)."""
