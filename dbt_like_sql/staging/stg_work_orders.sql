-- Work orders, typed: finish year and month, a corrective flag (not preventive), the asset's class and
-- site, and the failure-code category of the primary code.
WITH code_categories AS (
    SELECT primary_code, min(category) AS failure_category
    FROM failure_codes
    GROUP BY primary_code
)
SELECT
    w.wo_id,
    w.asset_id,
    coalesce(a.name, w.equipment_name) AS asset_name,
    a.equipment_class,
    a.site_id,
    w.wo_description,
    w.collection,
    w.preventive,
    NOT w.preventive AS corrective,
    w.priority,
    w.primary_code,
    w.primary_code_description,
    w.secondary_code,
    w.secondary_code_description,
    c.failure_category,
    w.finished_at,
    CAST(w.finished_at AS DATE) AS finished_date,
    year(w.finished_at) AS finished_year,
    month(w.finished_at) AS finished_month,
    CAST(date_trunc('month', w.finished_at) AS DATE) AS month_start,
    w.duration_hours,
    w.labor_hours
FROM work_orders AS w
LEFT JOIN assets AS a ON a.asset_id = w.asset_id
LEFT JOIN code_categories AS c ON c.primary_code = w.primary_code
