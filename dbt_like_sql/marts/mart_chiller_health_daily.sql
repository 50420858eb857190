-- Chiller health KPIs per chiller and day, over the 15-minute readings of stg_telemetry (temperatures in
-- degF, flows in gpm, power in kW, load in tons, as in the sensors table). KPIs that only make sense while
-- the machine runs are averaged over running buckets (Run Status >= 0.5; where Run Status is missing,
-- Power Input above 1 kW); efficiency also needs a real load (Tonnage >= 5, below which the sensor reads 0).
--   mean_efficiency_kw_per_ton: mean of the Chiller Efficiency sensor while running under load.
--   load_weighted_kw_per_ton: energy over cooling delivered (sum of Power Input / sum of Tonnage).
--   mean_evaporator_approach: Supply Temperature - Liquid Refrigerant Evaporator Temperature (fouling,
--     low refrigerant charge and low flow widen it).
--   mean_chilled_water_delta_t: Return Temperature - Supply Temperature.
--   mean_condenser_water_delta_t: Condenser Water Return To Tower Temperature - Condenser Water Supply
--     Temperature; where the supply temperature is missing, from the heat balance
--     24 * (Tonnage + Power Input * 3412 / 12000) / Condenser Water Flow.
--   mean_supply_setpoint_deviation: Supply Temperature - Setpoint Temperature.
--   run_hours: running buckets * 0.25 h; energy_kwh and ton_hours likewise per 15-minute bucket.
WITH wide AS (
    SELECT
        asset_id,
        site_id,
        day,
        bucket_15min,
        max(value) FILTER (WHERE sensor = 'Supply Temperature') AS supply_temp,
        max(value) FILTER (WHERE sensor = 'Return Temperature') AS return_temp,
        max(value) FILTER (WHERE sensor = 'Setpoint Temperature') AS setpoint_temp,
        max(value) FILTER (WHERE sensor = 'Liquid Refrigerant Evaporator Temperature') AS evaporator_refrigerant_temp,
        max(value) FILTER (WHERE sensor = 'Chiller Efficiency') AS efficiency_kw_per_ton,
        max(value) FILTER (WHERE sensor = 'Tonnage') AS tonnage,
        max(value) FILTER (WHERE sensor = 'Power Input') AS power_kw,
        max(value) FILTER (WHERE sensor = 'Chiller % Loaded') AS pct_loaded,
        max(value) FILTER (WHERE sensor = 'Condenser Water Flow') AS condenser_flow_gpm,
        max(value) FILTER (WHERE sensor = 'Condenser Water Supply Temperature') AS condenser_supply_temp,
        max(value) FILTER (WHERE sensor = 'Condenser Water Return To Tower Temperature') AS condenser_return_temp,
        max(value) FILTER (WHERE sensor = 'Run Status') AS run_status
    FROM stg_telemetry
    WHERE equipment_class = 'Chiller'
    GROUP BY asset_id, site_id, day, bucket_15min
),
states AS (
    SELECT
        *,
        coalesce(run_status >= 0.5, power_kw > 1.0, false) AS running,
        coalesce(
            condenser_return_temp - condenser_supply_temp,
            CASE
                WHEN condenser_flow_gpm > 0
                THEN 24.0 * (tonnage + power_kw * 3412.0 / 12000.0) / condenser_flow_gpm
            END
        ) AS condenser_water_delta_t
    FROM wide
)
SELECT
    s.asset_id,
    a.asset_name,
    s.site_id,
    s.day,
    count(*) AS buckets_with_data,
    count(*) FILTER (WHERE running) * 0.25 AS run_hours,
    avg(efficiency_kw_per_ton) FILTER (WHERE running AND tonnage >= 5) AS mean_efficiency_kw_per_ton,
    sum(power_kw) FILTER (WHERE running AND tonnage >= 5)
        / nullif(sum(tonnage) FILTER (WHERE running AND tonnage >= 5), 0) AS load_weighted_kw_per_ton,
    avg(tonnage) FILTER (WHERE running) AS mean_tonnage,
    coalesce(sum(tonnage) FILTER (WHERE running), 0) * 0.25 AS ton_hours,
    coalesce(sum(power_kw), 0) * 0.25 AS energy_kwh,
    avg(pct_loaded) FILTER (WHERE running) AS mean_pct_loaded,
    max(pct_loaded) AS max_pct_loaded,
    avg(supply_temp - evaporator_refrigerant_temp) FILTER (WHERE running) AS mean_evaporator_approach,
    avg(return_temp - supply_temp) FILTER (WHERE running) AS mean_chilled_water_delta_t,
    avg(condenser_water_delta_t) FILTER (WHERE running) AS mean_condenser_water_delta_t,
    avg(supply_temp - setpoint_temp) FILTER (WHERE running) AS mean_supply_setpoint_deviation
FROM states AS s
LEFT JOIN stg_assets AS a ON a.asset_id = s.asset_id
GROUP BY s.asset_id, a.asset_name, s.site_id, s.day
