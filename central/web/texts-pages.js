// Texts of the machine, orders, schedule, scan and job-card pages in simplified Chinese, traditional
// Chinese and English (docs/pages.md); the status page's texts (texts.js) are shared underneath.
"use strict";

window.PP_PAGE_TEXTS = {
  "zh-Hans": {
    navStatus: "设备状态", navOrders: "工单", navSchedule: "排产", navScan: "扫码报工",
    machineTitle: "设备详情", oeeTitle: "今日 OEE", oee: "OEE", availability: "时间稼动率", performance: "性能稼动率",
    quality: "良品率", mtbf: "平均故障间隔 MTBF", mttr: "平均修复时间 MTTR", partsToday: "今日 良品 / 不良",
    timelineTitle: "今日状态", paretoTitle: "停机原因（柏拉图）", cause: "原因", time: "时长", stops: "次数",
    share: "占比", cumulative: "累计", dispatchTitle: "派工单", operation: "工序", progress: "进度", status: "状态",
    projectedFinish: "预计完成", due: "交期", noDispatch: "没有派工单（未启用工单）", dispatchEmpty: "派工单为空",
    day: "生产日", failures: "故障次数", planned: "计划时间", noIdeal: "未设定理想节拍：无法计算性能",
    unplanned: "非计划时间（休息、班外）", noDowntime: "今日没有停机",
    cause_setup: "调机/换线", cause_idle: "空闲", cause_maintenance: "维护", cause_offline: "通讯中断",
    cause_micro_stop: "短暂停机", cause_no_data: "无数据",
    op_planned: "待产", op_running: "生产中", op_paused: "暂停", op_done: "完工", op_cancelled: "已取消",
  },
  "zh-Hant": {
    navStatus: "設備狀態", navOrders: "工單", navSchedule: "排產", navScan: "掃碼報工",
    machineTitle: "設備詳情", oeeTitle: "今日 OEE", oee: "OEE", availability: "時間稼動率", performance: "性能稼動率",
    quality: "良品率", mtbf: "平均故障間隔 MTBF", mttr: "平均修復時間 MTTR", partsToday: "今日 良品 / 不良",
    timelineTitle: "今日狀態", paretoTitle: "停機原因（柏拉圖）", cause: "原因", time: "時長", stops: "次數",
    share: "佔比", cumulative: "累計", dispatchTitle: "派工單", operation: "工序", progress: "進度", status: "狀態",
    projectedFinish: "預計完成", due: "交期", noDispatch: "沒有派工單（未啟用工單）", dispatchEmpty: "派工單為空",
    day: "生產日", failures: "故障次數", planned: "計畫時間", noIdeal: "未設定理想節拍：無法計算性能",
    unplanned: "非計畫時間（休息、班外）", noDowntime: "今日沒有停機",
    cause_setup: "調機/換線", cause_idle: "閒置", cause_maintenance: "維護", cause_offline: "通訊中斷",
    cause_micro_stop: "短暫停機", cause_no_data: "無資料",
    op_planned: "待產", op_running: "生產中", op_paused: "暫停", op_done: "完工", op_cancelled: "已取消",
  },
  en: {
    navStatus: "Status", navOrders: "Orders", navSchedule: "Schedule", navScan: "Scan",
    machineTitle: "Machine", oeeTitle: "OEE today", oee: "OEE", availability: "Availability", performance: "Performance",
    quality: "Quality", mtbf: "MTBF", mttr: "MTTR", partsToday: "Today good / scrap",
    timelineTitle: "Today's states", paretoTitle: "Downtime by cause (Pareto)", cause: "Cause", time: "Time", stops: "Stops",
    share: "Share", cumulative: "Cumulative", dispatchTitle: "Dispatch list", operation: "Operation", progress: "Progress",
    status: "Status", projectedFinish: "Projected finish", due: "Due", noDispatch: "No dispatch list (work orders are not enabled)",
    dispatchEmpty: "The dispatch list is empty",
    day: "Production day", failures: "Failures", planned: "Planned", noIdeal: "No ideal cycle time: performance cannot be computed",
    unplanned: "Unplanned (breaks, off shift)", noDowntime: "No downtime today",
    cause_setup: "Setup", cause_idle: "Idle", cause_maintenance: "Maintenance", cause_offline: "PLC unreachable",
    cause_micro_stop: "Micro-stops", cause_no_data: "No data",
    op_planned: "Planned", op_running: "Running", op_paused: "Paused", op_done: "Done", op_cancelled: "Cancelled",
  },
};
