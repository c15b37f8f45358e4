# NOTE: alert rules, alerts and notification channels are not built yet; the
# app exists so that their models and migrations have a home.
