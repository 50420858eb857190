-- Events (work orders, alerts, anomalies) on one timeline, typed: event group and category normalised to
-- upper case, flags per group, the asset's class and site, and the event's date.
SELECT
    e.event_id,
    upper(trim(e.event_group)) AS event_group,
    upper(trim(e.event_category)) AS event_category,
    e.event_type,
    e.description,
    e.asset_id,
    coalesce(a.name, e.equipment_name) AS asset_name,
    a.equipment_class,
    a.site_id,
    e.event_time,
    CAST(e.event_time AS DATE) AS event_date,
    upper(trim(e.event_group)) = 'WORK_ORDER' AS is_work_order,
    upper(trim(e.event_group)) = 'ALERT' AS is_alert,
    upper(trim(e.event_group)) = 'ANOMALY' AS is_anomaly,
    e.note
FROM events AS e
LEFT JOIN assets AS a ON a.asset_id = e.asset_id
