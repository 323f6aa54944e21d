import XCTest
@testable import RuleEngine

/// Every built-in, with its error cases: a wrong argument is an evaluation error, never a crash.
final class FunctionTests: XCTestCase {
    func eq(_ expression: String, _ expected: Value, payload: String = "{}", file: StaticString = #filePath, line: UInt = #line) {
        do {
            let value = try evaluate(expression, payload: payload)
            XCTAssertEqual(value, expected, expression, file: file, line: line)
        } catch {
            XCTFail("\(expression): \(error)", file: file, line: line)
        }
    }

    func fails(_ expression: String, _ message: String, payload: String = "{}", file: StaticString = #filePath, line: UInt = #line) {
        guard let error = evaluationError(expression, payload: payload) else {
            return XCTFail("\(expression) did not fail", file: file, line: line)
        }
        XCTAssertEqual(error.kind, .evaluation, file: file, line: line)
        XCTAssertEqual(error.message, message, expression, file: file, line: line)
    }

    static let tested: Set<String> = [
        "abs", "ceil", "floor", "round", "sqrt", "power", "exp", "log", "log10", "log2", "fmod", "sin", "cos", "tan",
        "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "pi",
        "bitand", "bitor", "bitxor", "bitsl", "bitsr", "bitnot",
        "is_null", "is_not_null", "is_num", "is_int", "is_float", "is_str", "is_bool", "is_map", "is_array",
        "int", "float", "str", "str_utf8", "bool",
        "lower", "upper", "trim", "ltrim", "rtrim", "reverse", "strlen", "concat", "substr", "split", "tokens",
        "replace", "find", "pad", "join_to_string", "sprintf", "ascii", "regex_match", "regex_replace", "regex_extract",
        "map_get", "map_put", "map_keys", "map_values", "map_size", "nth", "first", "last", "length", "contains", "sublist",
        "md5", "sha", "sha256", "base64_encode", "base64_decode", "json_encode", "json_decode", "bin2hexstr", "hexstr2bin",
        "now_timestamp", "now_rfc3339", "unix_ts_to_rfc3339", "rfc3339_to_unix_ts", "format_date",
        "uuid_v4", "uuid_v4_no_hyphen", "coalesce",
    ]

    func testEveryRegisteredFunctionIsTested() {
        XCTAssertEqual(Set(BuiltinRegistry.functions.keys), Self.tested)
    }

    func testMath() {
        eq("abs(-3)", 3); eq("abs(-2.5)", 2.5); fails("abs('x')", "abs: expected a number, got string")
        eq("ceil(1.2)", 2); eq("ceil(-1.2)", -1); eq("ceil(4)", 4); fails("ceil(null)", "ceil: expected a number, got null")
        eq("floor(1.8)", 1); eq("floor(-1.2)", -2); fails("floor(true)", "floor: expected a number, got boolean")
        eq("round(2.5)", 3); eq("round(-2.5)", -3); eq("round(2.4)", 2); fails("round('1')", "round: expected a number, got string")
        eq("sqrt(16)", 4.0); fails("sqrt(-1)", "sqrt: argument -1 is out of its domain"); fails("sqrt('a')", "sqrt: expected a number, got string")
        eq("power(2, 10)", 1024.0); eq("power(2, -1)", 0.5); fails("power(2, 'x')", "power: expected a number, got string")
        eq("exp(0)", 1.0); fails("exp(10000)", "exp: result is not a finite number")
        eq("log(1)", 0.0); fails("log(0)", "log: argument 0 is out of its domain")
        eq("log10(1000)", 3.0); fails("log10(-1)", "log10: argument -1 is out of its domain")
        eq("log2(8)", 3.0); fails("log2(payload.x)", "log2: expected a number, got undefined")
        eq("fmod(7.5, 2)", 1.5); fails("fmod(1, 0)", "fmod: division by zero")
        eq("sin(0)", 0.0); eq("cos(0)", 1.0); eq("tan(0)", 0.0); fails("sin('x')", "sin: expected a number, got string")
        eq("asin(1) * 2 = pi()", true); fails("asin(2)", "asin: argument 2 is out of its domain")
        eq("acos(1)", 0.0); fails("acos(-1.5)", "acos: argument -1.5 is out of its domain")
        eq("atan(0)", 0.0); eq("sinh(0)", 0.0); eq("cosh(0)", 1.0); eq("tanh(0)", 0.0); eq("asinh(0)", 0.0)
        eq("acosh(1)", 0.0); fails("acosh(0)", "acosh: argument 0 is out of its domain")
        eq("atanh(0)", 0.0); fails("atanh(1)", "atanh: argument 1 is out of its domain")
        eq("pi() > 3.14", true)
        eq("bitand(12, 10)", 8); eq("bitor(12, 10)", 14); eq("bitxor(12, 10)", 6); eq("bitnot(0)", -1)
        eq("bitsl(1, 4)", 16); eq("bitsr(16, 4)", 1); fails("bitand(1.5, 1)", "bitand: expected an integer, got float")
    }

    func testTypeChecks() {
        eq("is_null(payload.x)", true); eq("is_null(null)", true); eq("is_null(1)", false)
        eq("is_not_null(payload.x)", false); eq("is_not_null('')", true)
        eq("is_num(1)", true); eq("is_num(1.5)", true); eq("is_num('1')", false)
        eq("is_int(1)", true); eq("is_int(1.0)", false)
        eq("is_float(1.0)", true); eq("is_float(1)", false)
        eq("is_str('a')", true); eq("is_str(1)", false)
        eq("is_bool(false)", true); eq("is_bool(0)", false)
        eq("is_map(payload)", false); eq("is_map(payload.m)", true, payload: #"{"m":{}}"#); eq("is_map([])", false)
        eq("is_array([1])", true); eq("is_array('[1]')", false)
    }

    func testConversions() {
        eq("int(3.7)", 3); eq("int(-3.2)", -4); eq("int('42')", 42); eq("int('4.9')", 4); eq("int(true)", 1); eq("int(7)", 7)
        fails("int('x')", "int: 'x' is not a number"); fails("int([1])", "int: expected a number, string or boolean, got array")
        eq("float(2)", 2.0); eq("float('2.5')", 2.5); eq("float(3.14159, 2)", 3.14)
        fails("float('abc')", "float: 'abc' is not a number"); fails("float(true)", "float: expected a number or string, got boolean")
        fails("float(1.5, 20)", "float: decimals must be 0…15")
        eq("str(1)", "1"); eq("str(1.5)", "1.5"); eq("str(true)", "true"); eq("str([1, 'a'])", #"[1,"a"]"#); eq("str(payload.m)", #"{"a":1}"#, payload: #"{"m":{"a":1}}"#)
        eq("str_utf8('é')", "é"); eq("str(payload.x)", "undefined")
        eq("bool('true')", true); eq("bool(0)", false); eq("bool(true)", true)
        fails("bool('yes')", "bool: cannot convert string yes to a boolean"); fails("bool(2)", "bool: cannot convert integer 2 to a boolean")
    }

    func testStrings() {
        eq("lower('AbC')", "abc"); fails("lower(1)", "lower: expected a string, got integer")
        eq("upper('abc')", "ABC"); fails("upper(null)", "upper: expected a string, got null")
        eq("trim('  a b \n')", "a b"); eq("ltrim('  a ')", "a "); eq("rtrim('  a ')", "  a"); fails("trim(1)", "trim: expected a string, got integer")
        fails("ltrim([])", "ltrim: expected a string, got array"); fails("rtrim(true)", "rtrim: expected a string, got boolean")
        eq("reverse('abc')", "cba"); fails("reverse(1)", "reverse: expected a string, got integer")
        eq("strlen('héllo')", 5); fails("strlen(5)", "strlen: expected a string, got integer")
        eq("concat('a', 1, true, 2.5)", "a1true2.5"); fails("concat('a', payload.x)", "concat: expected a value, got undefined")
        eq("substr('abcdef', 2)", "cdef"); eq("substr('abcdef', 1, 3)", "bcd"); eq("substr('abc', 10)", ""); eq("substr('abc', 1, 99)", "bc")
        fails("substr('abc', -1)", "substr: start must be 0 or more, got -1"); fails("substr(1, 1)", "substr: expected a string, got integer")
        eq("split('a/b//c/', '/')", ["a", "b", "c"]); eq("split('a,b,c', ',', 'leading')", ["a", "b,c"]); eq("split('a,b,c', ',', 'trailing')", ["a,b", "c"])
        eq("split('a,,b', ',', 'notrim')", ["a", "", "b"]); eq("split('abc', ',')", ["abc"])
        fails("split('a', '')", "split: separator is empty"); fails("split('a', ',', 'middle')", "split: expected one of 'leading', 'trailing', 'notrim', got 'middle'")
        eq("tokens('a b,c', ' ,')", ["a", "b", "c"]); eq("tokens('a\r\nb', ' ', 'nocrlf')", ["a", "b"]); fails("tokens(1, ' ')", "tokens: expected a string, got integer")
        eq("replace('a-b-c', '-', '+')", "a+b+c"); eq("replace('a-b-c', '-', '+', 'leading')", "a+b-c"); eq("replace('a-b-c', '-', '+', 'trailing')", "a-b+c")
        fails("replace('a', '', 'b')", "replace: search string is empty"); fails("replace('a', 'a', 1)", "replace: expected a string, got integer")
        eq("find('abcdabcd', 'bc')", "bcdabcd"); eq("find('abcdabcd', 'bc', 'trailing')", "bcd"); eq("find('abc', 'x')", "")
        fails("find('abc', 1)", "find: expected a string, got integer")
        eq("pad('ab', 4)", "ab  "); eq("pad('ab', 4, 'leading')", "  ab"); eq("pad('ab', 5, 'both', '*')", "*ab**"); eq("pad('abcdef', 3)", "abcdef")
        fails("pad('a', 3, 'trailing', 'xy')", "pad: the pad character must be one character"); fails("pad('a', 'x')", "pad: expected an integer, got string")
        eq("join_to_string('-', ['a', 1, true])", "a-1-true"); eq("join_to_string(['a', 'b'])", "a, b"); fails("join_to_string('-', 'x')", "join_to_string: expected an array, got string")
        eq("sprintf('~s is ~p ~~', 'car', 5)", "car is 5 ~"); eq("sprintf('%s=%d %.2f %x %%', 'v', 42, 3.14159, 255)", "v=42 3.14 ff %")
        fails("sprintf('%d', 'x')", "sprintf: expected a number for %d, got string"); fails("sprintf('~s ~s', 'a')", "sprintf: not enough arguments for '~s ~s'")
        fails("sprintf('%q', 1)", "sprintf: unsupported directive '%q'")
        eq("ascii('A')", 65); fails("ascii('AB')", "ascii: expected one ASCII character")
    }

    func testRegex() {
        eq("regex_match('car-42', '[0-9]+')", true); eq("regex_match('car', '^[0-9]+$')", false)
        eq("regex_match(clientid, concat('^c', '[0-9]$'))", true)
        fails("regex_match(clientid, concat(clientid, '('))", "regex_match: invalid regular expression 'c1('")
        fails("regex_match(1, 'a')", "regex_match: expected a string, got integer")
        eq("regex_replace('a1b22c', '[0-9]+', '#')", "a#b#c"); eq("regex_replace('john smith', '(\\\\w+) (\\\\w+)', '\\\\2 \\\\1')", "smith john")
        fails("regex_replace('a', 'a', 1)", "regex_replace: expected a string, got integer")
        eq("regex_extract('id=42;v=7', 'id=([0-9]+);v=([0-9]+)')", ["42", "7"]); eq("regex_extract('abc123', '[0-9]+')", ["123"]); eq("regex_extract('abc', '[0-9]')", [])
        fails("regex_extract(null, 'a')", "regex_extract: expected a string, got null")
    }

    func testMapsAndArrays() {
        let p = #"{"m":{"a":1,"b":{"c":2}},"l":[1,2,3]}"#
        eq("map_get('a', payload.m)", 1, payload: p); eq("map_get('b.c', payload.m)", 2, payload: p)
        eq("map_get('z', payload.m)", .undefined, payload: p); eq("map_get('z', payload.m, 0)", 0, payload: p)
        fails("map_get('a', 1)", "map_get: expected a map, got integer")
        eq("map_put('z', 9, payload.m)", .map(ValueMap(["a": 1, "b": .map(ValueMap(["c": 2])), "z": 9])), payload: p)
        fails("map_put('a', 1, [])", "map_put: expected a map, got array")
        eq("map_keys(payload.m)", ["a", "b"], payload: p); fails("map_keys('x')", "map_keys: expected a map, got string")
        eq("map_values(payload.m)", [1, .map(ValueMap(["c": 2]))], payload: p); fails("map_values(1)", "map_values: expected a map, got integer")
        eq("map_size(payload.m)", 2, payload: p); fails("map_size(null)", "map_size: expected a map, got null")
        eq("nth(2, payload.l)", 2, payload: p); fails("nth(4, payload.l)", "nth: index 4 is outside 1…3", payload: p); fails("nth('a', [1])", "nth: expected an integer, got string")
        eq("first(payload.l)", 1, payload: p); fails("first([])", "first: the array is empty"); fails("first(1)", "first: expected an array, got integer")
        eq("last(payload.l)", 3, payload: p); fails("last([])", "last: the array is empty")
        eq("length(payload.l)", 3, payload: p); eq("length('[1,2]')", 2); fails("length(1)", "length: expected an array, got integer")
        eq("contains(2, payload.l)", true, payload: p); eq("contains('x', payload.l)", false, payload: p); fails("contains(1, 1)", "contains: expected an array, got integer")
        eq("sublist(2, payload.l)", [1, 2], payload: p); eq("sublist(2, 5, payload.l)", [2, 3], payload: p); eq("sublist(9, 1, payload.l)", [], payload: p)
        fails("sublist(0, 1, [1])", "sublist: start must be ≥ 1 and length ≥ 0"); fails("sublist(1, 'x')", "sublist: expected an array, got string")
    }

    func testHashes() {
        eq("md5('')", "d41d8cd98f00b204e9800998ecf8427e"); eq("md5('abc')", "900150983cd24fb0d6963f7d28e17f72")
        eq("md5('The quick brown fox jumps over the lazy dog')", "9e107d9d372bb6826bd81d3542a419d6")
        fails("md5(1)", "md5: expected a string, got integer")
        eq("sha('abc')", "a9993e364706816aba3e25717850c26c9cd0d89d"); eq("sha('')", "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        fails("sha(null)", "sha: expected a string, got null")
        eq("sha256('abc')", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        eq("sha256('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        fails("sha256([])", "sha256: expected a string, got array")
    }

    func testEncodings() {
        eq("base64_encode('hello!?')", "aGVsbG8hPw=="); eq("base64_encode('')", ""); eq("base64_encode('ab')", "YWI=")
        fails("base64_encode(1)", "base64_encode: expected a string, got integer")
        eq("base64_decode('aGVsbG8hPw==')", "hello!?"); eq("base64_decode('/w==')", .binary([0xff]))
        fails("base64_decode('a*b')", "base64_decode: the input is not base64"); fails("base64_decode('YQ=x')", "base64_decode: the input is not base64")
        eq("json_encode(payload)", #""{\"a\":[1,2.5]}""#, payload: #"{"a":[1,2.5]}"#)
        eq("json_encode(payload.a)", "[1,2.5]", payload: #"{"a":[1,2.5]}"#); eq("json_encode('x')", #""x""#)
        eq("json_decode('{\"a\":1}')", .map(ValueMap(["a": 1]))); eq("json_decode('[true]')", [true])
        fails("json_decode('{bad')", "json_decode: the input is not JSON"); fails("json_decode(1)", "json_decode: expected a string, got integer")
        eq("bin2hexstr('AB')", "4142"); eq("bin2hexstr(hexstr2bin('00ff'))", "00FF"); fails("bin2hexstr(1)", "bin2hexstr: expected a string, got integer")
        eq("hexstr2bin('4142')", "AB"); eq("hexstr2bin('ff')", .binary([0xff]))
        fails("hexstr2bin('abc')", "hexstr2bin: odd number of hex digits"); fails("hexstr2bin('zz')", "hexstr2bin: 'zz' is not hex")
    }

    func testTime() throws {
        guard case .int(let now) = try evaluate("now_timestamp()") else { return XCTFail() }
        XCTAssertGreaterThan(now, 1_700_000_000)
        guard case .int(let nowMs) = try evaluate("now_timestamp('millisecond')") else { return XCTFail() }
        XCTAssertGreaterThan(nowMs, now * 1000 - 1)
        fails("now_timestamp('week')", "now_timestamp: unknown time unit 'week' (second, millisecond, microsecond, nanosecond)")
        guard case .string(let rfc) = try evaluate("now_rfc3339()") else { return XCTFail() }
        XCTAssertEqual(rfc.count, 25)
        XCTAssertTrue(rfc.hasSuffix("+00:00"))
        guard case .string(let rfcMs) = try evaluate("now_rfc3339('millisecond')") else { return XCTFail() }
        XCTAssertEqual(rfcMs.count, 29)
        fails("now_rfc3339(1)", "now_rfc3339: expected a string, got integer")

        eq("unix_ts_to_rfc3339(0)", "1970-01-01T00:00:00+00:00")
        eq("unix_ts_to_rfc3339(1700000000123, 'millisecond')", "2023-11-14T22:13:20.123+00:00")
        eq("unix_ts_to_rfc3339(-1)", "1969-12-31T23:59:59+00:00")
        eq("unix_ts_to_rfc3339(951782400)", "2000-02-29T00:00:00+00:00")
        fails("unix_ts_to_rfc3339('x')", "unix_ts_to_rfc3339: expected an integer, got string")

        eq("rfc3339_to_unix_ts('2023-11-14T22:13:20Z')", 1_700_000_000)
        eq("rfc3339_to_unix_ts('2023-11-14T23:13:20.5+01:00', 'millisecond')", 1_700_000_000_500)
        eq("rfc3339_to_unix_ts('1969-12-31T23:59:59.5Z')", -1)
        eq("rfc3339_to_unix_ts(unix_ts_to_rfc3339(timestamp, 'millisecond'), 'millisecond')", 1_700_000_000_000)
        fails("rfc3339_to_unix_ts('2023-02-30T00:00:00Z')", "rfc3339_to_unix_ts: '2023-02-30T00:00:00Z' is not an RFC 3339 date-time")
        fails("rfc3339_to_unix_ts('yesterday')", "rfc3339_to_unix_ts: 'yesterday' is not an RFC 3339 date-time")

        eq("format_date('millisecond', '+08:00', '%Y-%m-%d %H:%M:%S.%3N %z %:z %%', 1700000000123)", "2023-11-15 06:13:20.123 +0800 +08:00 %")
        eq("format_date('second', 'Z', '%Y/%m/%d', 0)", "1970/01/01")
        eq("format_date('second', -3600, '%H:%M %::z', 0)", "23:00 -01:00:00")
        eq("format_date('nanosecond', '-0530', '%6N|%N', 1500)", "000001|000001500")
        guard case .string(let today) = try evaluate("format_date('second', 'local', '%Y')") else { return XCTFail() }
        XCTAssertEqual(today.count, 4)
        fails("format_date('second', 'Mars', '%Y', 0)", "format_date: bad offset 'Mars' (expected 'Z', 'local', '+hh:mm' or seconds)")
        fails("format_date('second', 'Z', '%Q', 0)", "format_date: unsupported directive '%Q'")
        fails("format_date('eon', 'Z', '%Y', 0)", "format_date: unknown time unit 'eon' (second, millisecond, microsecond, nanosecond)")
    }

    func testMisc() throws {
        guard case .string(let u) = try evaluate("uuid_v4()"), case .string(let v) = try evaluate("uuid_v4()") else { return XCTFail() }
        XCTAssertNotEqual(u, v)
        let parts = u.split(separator: "-")
        XCTAssertEqual(parts.map(\.count), [8, 4, 4, 4, 12])
        XCTAssertEqual(parts[2].first, "4")
        XCTAssertTrue("89ab".contains(parts[3].first!))
        guard case .string(let h) = try evaluate("uuid_v4_no_hyphen()") else { return XCTFail() }
        XCTAssertEqual(h.count, 32)
        eq("coalesce(payload.x, null, 'd', 'e')", "d"); eq("coalesce(payload.x)", .undefined)
    }

    func testArityIsCheckedAtCompileTime() {
        XCTAssertEqual(parseError(#"CREATE RULE r AS SELECT concat() FROM "t" INTO log()"#)?.message, "concat takes at least 1 argument, got 0")
        XCTAssertEqual(parseError(#"CREATE RULE r AS SELECT substr('a') FROM "t" INTO log()"#)?.message, "substr takes 2 to 3 arguments, got 1")
        XCTAssertEqual(parseError(#"CREATE RULE r AS SELECT uuid_v4(1) FROM "t" INTO log()"#)?.message, "uuid_v4 takes 0 arguments, got 1")
    }

    func testFunctionNamesAreCaseInsensitive() {
        eq("UPPER('a')", "A")
    }
}
