"""Variant kanji (異体字): forms people type either way for one name, folded to one form.

NFKC already folds the CJK compatibility block (U+F900–FAFF: 﨑 stays, 塚 goes); this table
covers the rest that registries, business cards and CRMs disagree on. 𠮷 (outside cp932)
arrives as ``?`` from Shift_JIS exports: that row's reading still matches, its kanji cannot.
"""

from __future__ import annotations

# Each line: the form compared, then the forms folded into it.
_GROUPS = """
斎 斉 齋 齊 斋
辺 邊 邉 邊
高 髙
崎 﨑 嵜 碕
沢 澤
桜 櫻
関 關
吉 𠮷
浜 濱 濵
広 廣
国 國 圀
島 嶋 嶌
竜 龍
富 冨
恵 惠
徳 德
瀬 瀨
真 眞
浅 淺
芸 藝
昇 曻
渡 渡
塚 塚
槙 槇
桧 檜
蔵 藏
栄 榮
会 會
学 學
実 實
条 條
礼 禮
滝 瀧
巌 巖
峰 峯
渕 淵 渊
館 舘
黒 黑
増 增
万 萬
与 與
来 來
曽 曾
穂 穗
弥 彌
豊 豐
鉄 鐵
亀 龜
芦 蘆
壮 壯
寿 壽
将 將
剣 劍 劒
桑 桒
柳 栁
頼 賴
鴎 鷗
鶴 靏 靎
薗 園
条 條
隆 隆
晴 晴
祐 祐
福 福
神 神
録 錄
駒 駒
讃 讚
髪 髮
"""

VARIANTS: dict[str, str] = {}
for _line in _GROUPS.strip().splitlines():
    _head, *_rest = _line.split()
    for _v in _rest:
        if _v != _head and len(_v) == 1:
            VARIANTS[_v] = _head

_TABLE = str.maketrans(VARIANTS)


def fold_variants(text: str) -> str:
    """Every variant kanji in ``text`` replaced by the form it is compared as."""
    return text.translate(_TABLE)
