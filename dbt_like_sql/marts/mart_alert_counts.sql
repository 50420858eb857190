-- Alerts per rule and asset: how often each rule fired on each asset, when it first and last fired, and
-- how long the alert conditions held (total hours, mean minutes per alert).
SELECT
    rule_id,
    rule_name,
    sensor,
    asset_id,
    asset_name,
    equipment_class,
    site_id,
    count(*) AS alert_count,
    count(DISTINCT start_date) AS alert_days,
    min(start_time) AS first_alert_at,
    max(start_time) AS last_alert_at,
    coalesce(sum(duration_minutes), 0) / 60.0 AS total_alert_hours,
    avg(duration_minutes) AS mean_duration_minutes
FROM stg_alerts
GROUP BY rule_id, rule_name, sensor, asset_id, asset_name, equipment_class, site_id
