import Foundation
import TestFiles
import Testing

/// The committed Swift wire types must come from the committed `.proto` files:
/// `Protos/generate.sh` records their checksums (and its own) beside the code it generates.
@Suite("Generated wire code")
struct GeneratedWireCodeTests {
    static let repository = TestFiles.repository

    /// The Swift code (`Sources/Wire/Generated`) and the C code (`peers/c-verifier/generated`).
    @Test(arguments: ["Sources/Wire/Generated", "peers/c-verifier/generated"])
    func generatedCodeMatchesTheProtoFiles(_ folder: String) throws {
        let stamp = try String(contentsOf: Self.repository.appendingPathComponent("\(folder)/protos.sha256"), encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let protos = try FileManager.default.contentsOfDirectory(atPath: Self.repository.appendingPathComponent("Protos").path)
            .filter { $0.hasSuffix(".proto") }.sorted()
        // (the generator script too: its options shape the generated code)
        process.arguments = ["sha256sum"] + protos + ["generate.sh"]
        process.currentDirectoryURL = Self.repository.appendingPathComponent("Protos")
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let current = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(current == stamp, "Protos/*.proto or Protos/generate.sh changed since \(folder) was generated: run Protos/generate.sh and commit the result")
    }
}
