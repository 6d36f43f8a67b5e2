"""The real/synthetic ratio study: runs, statistics, plots and reports."""
