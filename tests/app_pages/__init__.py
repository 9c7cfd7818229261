"""Tests of app_pages/: the pages, through AppTest and a real browser."""
