"""Alerting pipeline (UC4, UC9): gather (stock states, recent daily sales) → rules (rules.py) → reconcile
with the alerts in the state database (state/alerts.py) → digest e-mail into the outbox (digest.py), sent by
the notifications' delivery loop. `pipeline.py` holds the stages in order."""
