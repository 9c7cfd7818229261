"""Reading results: statistics, charts, page views and the meeting report."""
