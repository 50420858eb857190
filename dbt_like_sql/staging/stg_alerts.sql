-- Alert events joined to the rule that fired (name, watched sensor, threshold, mapped failure code),
-- with the alert's duration in minutes (NULL while it is still open).
SELECT
    al.alert_id,
    al.asset_id,
    coalesce(a.name, al.equipment_name) AS asset_name,
    a.equipment_class,
    a.site_id,
    al.rule_id,
    r.rule_name,
    r.sensor,
    r.operator,
    r.threshold,
    r.primary_code,
    al.start_time,
    al.end_time,
    CAST(al.start_time AS DATE) AS start_date,
    date_diff('second', al.start_time, al.end_time) / 60.0 AS duration_minutes
FROM alerts AS al
LEFT JOIN alert_rules AS r ON r.rule_id = al.rule_id
LEFT JOIN assets AS a ON a.asset_id = al.asset_id
