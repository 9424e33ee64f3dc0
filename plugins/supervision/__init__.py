"""督查督办 and 领导包案: supervision orders, escalation of what is overdue, 通报."""
