"""信息零报告: daily reports from every station in a sensitive period."""
