"""The controlled lists of a case, in the users' words.

Each list is a vocabulary other plugins extend through ``xinfang_vocabulary``
(a county adds a 问题类别 without touching this module).
"""

from xinfang.core.entities import Choice


def _choices(*pairs: tuple[str, str]) -> list[Choice]:
    return [Choice(code, label) for code, label in pairs]


VOCABULARIES = {
    "case.channel": _choices(
        ("letter", "来信"), ("visit", "来访"), ("online", "网上信访"), ("phone", "电话"),
        ("mailbox", "领导信箱"), ("referred", "上级转交办")),
    "case.kind": _choices(
        ("suggestion", "建议意见"), ("report", "检举控告"), ("appeal", "申诉求决")),
    "case.category": _choices(
        ("urban_construction", "城乡建设"), ("demolition", "城建拆迁"),
        ("law_litigation", "涉法涉诉"), ("labour", "劳动社保"), ("land", "国土资源"),
        ("agriculture", "农村农业"), ("civil_affairs", "民政优抚"), ("medical", "医患纠纷"),
        ("environment", "环境污染"), ("resettlement", "库区移民"), ("veterans", "涉军群体"),
        ("enterprise_reform", "企业改制"), ("historical", "历史遗留"),
        ("neighbour", "邻里纠纷"), ("family", "家庭纠纷"), ("village_affairs", "村务公开")),
    "case.legal_channel": _choices(
        ("litigation", "诉讼"), ("arbitration", "仲裁"), ("admin_review", "行政复议"),
        ("npc", "人大"), ("court", "法院"), ("procuratorate", "检察院"),
        ("discipline", "纪检监察"), ("other", "其他法定途径")),
    "case.forward_mode": _choices(("transfer", "转送"), ("assign", "交办")),
    "case.answer_outcome": _choices(
        ("support", "予以支持"), ("explain", "解释说明"), ("reject", "不予支持")),
    "case.review_outcome": _choices(
        ("upheld", "维持"), ("changed", "变更"), ("redo", "责令重新办理")),
    "case.rating": _choices(
        ("satisfied", "满意"), ("basically", "基本满意"), ("dissatisfied", "不满意")),
    # the level the petitioner went (or wrote) to; the codes of the levels, and 京
    "case.went_to": _choices(
        ("village", "村"), ("township", "乡镇"), ("county", "县"), ("city", "市"),
        ("province", "省"), ("capital", "京")),
    "case.source": _choices(
        ("self", "群众自行"), ("higher", "上级交办"), ("national", "国家信访信息系统转办"),
        ("supervision", "督办")),
    "case.ending": _choices(
        ("lawful", "依法终结"), ("agreement", "协议化解"), ("hearing", "听证终结"),
        ("relief", "救助息访"), ("suspended", "程序中止"), ("answered", "答复办结")),
}
#: the levels of ``case.went_to``, lowest first: 越级 is two or more steps above the
#: level of the case's area
WENT_TO_ORDER = ("village", "township", "county", "city", "province", "capital")
