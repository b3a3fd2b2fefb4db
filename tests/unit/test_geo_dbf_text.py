"""Which encoding a Shapefile's .dbf text is read in: from its bytes, with the .cpg as a hint (pure)."""

from geo.boundaries import choose_dbf_encoding

NAMES = ["名称".encode("gbk"), b"CODE"]


def records(text: str, encoding: str) -> bytes:
    return b" " + text.encode(encoding).ljust(40)


def test_ascii_text_needs_no_encoding_whatever_the_cpg():
    assert choose_dbf_encoding([b"NAME"], b" abc", "System").encoding is None


def test_a_single_byte_code_page_over_gbk_text_gives_way_to_gbk_with_a_note():
    chosen = choose_dbf_encoding(NAMES, records("测试县东溪镇", "gbk"), "1252")
    assert chosen.encoding == "gb18030" and chosen.problem is None
    assert chosen.notes == [
        ".cpg 文件写的编码「1252」与属性内容不符，属性按 GBK 编码读取：请核对名称是否正确"
    ]


def test_a_gbk_cpg_over_chinese_utf8_text_gives_way_to_utf8():
    chosen = choose_dbf_encoding(["名称".encode()], records("测试县东溪镇", "utf-8"), "GBK")
    assert chosen.encoding == "utf-8" and "「GBK」与属性内容不符，属性按 UTF-8 编码读取" in chosen.notes[0]


def test_a_latin1_file_declared_latin1_that_gbk_cannot_read_is_read_as_declared():
    chosen = choose_dbf_encoding([b"NAME"], records("Zürich ÿ", "latin-1"), "88591")  # ÿ: no GBK byte
    assert (chosen.encoding, chosen.notes) == ("iso8859-1", [])


def test_utf8_field_names_cut_at_ten_bytes_are_still_utf8():
    cut = "区划代码".encode()[:10]  # as GDAL writes it: the fourth character cut after one byte
    chosen = choose_dbf_encoding([cut], records("测试县", "utf-8"), "UTF-8")
    assert (chosen.encoding, chosen.notes, chosen.problem) == ("utf-8", [], None)


def test_utf8_text_with_one_value_cut_mid_character_is_utf8_with_a_note_not_gbk():
    text = "测试县东溪镇西溪镇" * 10
    damaged = records(text, "utf-8") + "东".encode()[:2] + b" "
    chosen = choose_dbf_encoding(["名称".encode()], damaged, None)
    assert chosen.encoding == "utf-8" and "不是完整的 UTF-8 字符" in chosen.notes[0]


def test_text_in_neither_utf8_nor_gbk_is_refused_in_chinese():
    chosen = choose_dbf_encoding([b"NAME"], b"\xff\xfe\xff", None)
    assert chosen.encoding is None and chosen.problem is not None
    assert chosen.problem.reason.startswith("无法读取文件：属性表的文字编码无法识别")


def test_field_names_a_dbf_cut_are_matched_to_the_columns_they_stand_for():
    import geopandas as gpd
    from shapely.geometry import box

    from geo.boundaries import full_field_name, suggest_mapping

    # UTF-8 cut mid-character (区划代码 → 区划代), GBK cut on a whole character (行政区划代码 → 行政区划代)
    columns = {"区划代": ["1"], "区划名": ["测试县"], "级别": ["县"], "上级编": [None], "常住人": [1]}
    frame = gpd.GeoDataFrame(columns, geometry=[box(0, 0, 1, 1)], crs=4326)
    mapping = suggest_mapping(frame)
    assert (mapping.code, mapping.name, mapping.level, mapping.parent, mapping.population) == (
        "区划代",
        "区划名",
        "级别",
        "上级编",
        "常住人",
    )
    assert suggest_mapping(frame.rename(columns={"区划代": "行政区划代"})).code == "行政区划代"
    assert full_field_name("区划代") == "区划代码" and full_field_name("区") is None
