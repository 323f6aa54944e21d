import XCTest
@testable import RuleEngine

/// The payload tape, whole-document decoding and the writer.
final class JSONTests: XCTestCase {
    func decode(_ s: String) -> Value? { JSONParser.parseValue(s) }

    func testScalars() {
        XCTAssertEqual(decode("1"), 1)
        XCTAssertEqual(decode("-0"), 0)
        XCTAssertEqual(decode("1.5"), 1.5)
        XCTAssertEqual(decode("1e3"), 1000.0)
        XCTAssertEqual(decode("-2.5E-3"), -0.0025)
        XCTAssertEqual(decode("9223372036854775807"), .int(.max))
        XCTAssertEqual(decode("-9223372036854775808"), .int(.min))
        XCTAssertEqual(decode("9223372036854775808"), .float(9223372036854775808.0))
        XCTAssertEqual(decode("0.1"), 0.1)
        XCTAssertEqual(decode("123456789012345678901234567890"), .float(1.2345678901234568e29))
        XCTAssertEqual(decode(" true "), true)
        XCTAssertEqual(decode("null"), .null)
        XCTAssertEqual(decode(#""a\nb\u0041\/""#), "a\nbA/")
    }

    func testContainersKeepOrder() {
        let v = decode(#"{"b":1,"a":[1,{"c":[]}],"e":{}}"#)
        XCTAssertEqual(v?.mapValue?.keys, ["b", "a", "e"])
        XCTAssertEqual(v?["a"], [1, .map(ValueMap(["c": []]))])
    }

    func testInvalid() {
        for bad in ["", "{", "[1,]", "{\"a\"}", "01", "1.", "-", "tru", "\"a", "{\"a\":1}x", "[1 2]", "\"\u{01}\"", #""\x""#, "1e"] {
            XCTAssertNil(decode(bad), bad)
        }
    }

    /// Numbers are converted only when read, but a bad one anywhere still makes the whole
    /// payload invalid: a rule must not read `speed` out of a document that is not JSON.
    func testUnreadBadNumberInvalidatesTheDocument() {
        for bad in [#"{"speed":1,"x":01}"#, #"{"speed":1,"x":[2,-]}"#, #"{"speed":1,"x":1.e5}"#, #"{"speed":1,"x":2e+}"#] {
            let tape = JSONTape(parsing: Array(bad.utf8))
            XCTAssertFalse(tape.isValid, bad)
        }
        let good = JSONTape(parsing: Array(#"{"speed":142.25,"n":-7,"big":1e400}"#.utf8))
        XCTAssertEqual(good.value(at: good.member(of: 0, key: Array("speed".utf8))!), 142.25)
        XCTAssertEqual(good.value(at: good.member(of: 0, key: Array("n".utf8))!), -7)
        XCTAssertEqual(good.value(at: good.member(of: 0, key: Array("big".utf8))!), .float(.infinity))
    }

    /// The tape validates numbers with `NumberParser.skip` and converts them later with `scan`:
    /// the two must agree on what a number is and where it ends, or a valid-looking payload
    /// would read as undefined.
    func testNumberSkipAndScanAgree() {
        var cases = ["0", "-0", "1", "-1", "10", "01", "-", "+1", "1.", ".5", "1.5", "1e", "1e+", "1e-2",
                     "1E9", "-2.5E-3", "9223372036854775807", "9223372036854775808", "1.e5", "0.0e0",
                     "123456789012345678901234567890", "1e400", "00", "-01", "2x", "3.14]", "7,"]
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789-+.eE ,]x")
        for _ in 0..<5_000 {
            cases.append(String((0..<Int.random(in: 1...8, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }))
        }
        for text in cases {
            let bytes = Array(text.utf8)
            bytes.withUnsafeBufferPointer { p in
                var i = 0, j = 0
                var bits: UInt64 = 0
                let skipped = NumberParser.skip(p, &i)
                let scanned = NumberParser.scan(p, &j, &bits) != 0
                XCTAssertEqual(skipped, scanned, text)
                if skipped && scanned { XCTAssertEqual(i, j, text) }
            }
        }
    }

    /// The node buffer is preallocated for payloads up to 64 KiB and grows past that; a tape
    /// reused for a small payload after a huge one gives the big buffer back.
    func testTapeGrowsPastItsPreallocationAndShrinksAfter() {
        let n = 70_000
        var tape = JSONTape()
        tape.parse(Array(("[" + (1...n).map(String.init).joined(separator: ",") + "]").utf8))
        XCTAssertTrue(tape.isValid)
        XCTAssertEqual(tape.nodes.count, n + 1)
        XCTAssertEqual(tape.value(at: tape.element(of: 0, index: n)!), .int(Int64(n)))
        XCTAssertEqual(tape.value(at: tape.element(of: 0, index: 1)!), 1)
        tape.parse(Array(#"{"speed":42}"#.utf8))
        XCTAssertEqual(tape.value(at: tape.member(of: 0, key: Array("speed".utf8))!), 42)
        XCTAssertEqual(tape.nodes.count, 3)
        let copy = tape
        tape.parse(Array("[7]".utf8))
        XCTAssertEqual(copy.value(at: copy.member(of: 0, key: Array("speed".utf8))!), 42, "a copy keeps its nodes")
        XCTAssertEqual(tape.value(at: 1), 7)
    }

    func testHostileDepthIsRejectedNotCrashing() {
        XCTAssertNil(decode(String(repeating: "[", count: 100_000)))
        XCTAssertNotNil(decode(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)))
    }

    func testTapeLookups() {
        let tape = JSONTape(parsing: Array(#"{"a":{"b":[10,20,{"c":true}]},"z":1}"#.utf8))
        let a = tape.member(of: 0, key: Array("a".utf8))!
        let b = tape.member(of: a, key: Array("b".utf8))!
        XCTAssertEqual(tape.value(at: tape.element(of: b, index: 2)!), 20)
        XCTAssertEqual(tape.value(at: tape.element(of: b, index: -1)!), .map(ValueMap(["c": true])))
        XCTAssertNil(tape.element(of: b, index: 4))
        XCTAssertEqual(tape.value(at: tape.member(of: 0, key: Array("z".utf8))!), 1)
        XCTAssertNil(tape.member(of: 0, key: Array("q".utf8)))
    }

    func testWriter() {
        let v: Value = .map(ValueMap(["s": "q\"\\\n\u{01}", "i": 1, "f": 2.5, "w": 3.0, "b": false, "n": .null,
                                      "u": .undefined, "a": [1, .undefined], "bin": .binary(Array("hi".utf8))]))
        XCTAssertEqual(JSONWriter.string(v), #"{"s":"q\"\\\n\u0001","i":1,"f":2.5,"w":3.0,"b":false,"n":null,"a":[1,null],"bin":"hi"}"#)
        XCTAssertEqual(JSONWriter.string(.float(.infinity)), "null")
    }

    func testRoundTrip() {
        let text = #"{"vin":"V","speed":142.5,"pos":{"lat":48.1,"tags":["a"]},"n":-3,"ok":true,"x":null}"#
        XCTAssertEqual(JSONWriter.string(decode(text)!), text)
    }
}
