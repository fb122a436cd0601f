"""`inv deploy.full` as data: the concrete steps, the rollback, the summary."""
