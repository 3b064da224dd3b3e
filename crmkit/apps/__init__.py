"""The manager apps: Voila pages over the score snapshot, scoped, offline, in Chinese or English.

``crmkit app`` (:mod:`crmkit.commands.app`) serves the notebooks in
``notebooks/apps/``; each notebook is a parameters cell and one call into a
module of this package, which reads the store, draws the widgets and keeps
the logic testable without a browser.

- :mod:`.common`: the settings ``crmkit app`` passes (store, scope, language),
  the score snapshot an app reads and the scope's rows of it, the page style
  with the bundled CJK web font, one-sentence errors;
- :mod:`.dashboard`: the scope's KPIs against their comparison period, mix, trend, cohorts
  and store ranking, sliced from a KPI cube read once (:mod:`crmkit.kpi_cube`);
- :mod:`.churn_warning`: the at-risk, high-value members of the scope;
- :mod:`.member_360`: one member of the scope, by id, card number or phone suffix;
- :mod:`.campaign_review`: one campaign measured in the scope: verdict, lift, ROI, funnel, breakdowns;
- :mod:`.server`: the Voila template (no CDN) and the landing page.

:data:`APPS` lists the apps: notebook name, then zh / en title and one line.
"""
from __future__ import annotations

#: The apps, in the order the landing page lists them: notebook name -> ((zh, en) title, (zh, en) line).
APPS = {
    "dashboard": (("经营看板", "Manager dashboard"),
                  ("按区域、门店、期间、等级与渠道查看会员数、活跃率、销售额、客单价、CLV 与流失风险，附对比期、趋势、结构、留存与门店排名",
                   "Members, active rate, sales, AOV, CLV and churn risk by region, store, period, tier and channel, "
                   "against the comparison period, with trend, mix, retention and the store ranking")),
    "churn_warning": (("流失预警", "Churn warning"),
                      ("范围内流失风险高、价值高的会员，附建议动作与脱敏导出",
                       "At-risk, high-value members in your scope, with a suggested action and a masked export")),
    "member_360": (("会员 360 查询", "Member 360 lookup"),
                   ("按会员编号、会员卡号或手机号后 4 位查找范围内的会员：档案、等级、分群、CLV、流失风险、订单、券与积分",
                    "Find a member of your scope by member id, card number or the phone's last 4 digits: profile, "
                    "tier, segment, CLV, churn risk, orders, coupons and points")),
    "campaign_review": (("活动复盘", "Campaign review"),
                        ("选择一个活动：在你的范围内是否回本、转化率提升与 ROI 及其区间、漏斗，以及按等级、分群、门店的提升",
                         "Pick a campaign: did it pay in your scope, its lift and ROI with their intervals, the funnel, "
                         "and the lift by tier, segment and store")),
}
