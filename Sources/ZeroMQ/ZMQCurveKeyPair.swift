import CZeroMQ

/// A CURVE key pair in ZeroMQ's Z85 text form (40 characters each).
public struct ZMQCurveKeyPair: Sendable, Hashable, Codable {
    public var publicKey: String
    public var secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Generates a fresh key pair with libzmq's `zmq_curve_keypair`.
    /// - Throws: ``ZMQError`` if libzmq was built without CURVE.
    public static func generate() throws -> ZMQCurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
            throw ZMQError.last("zmq_curve_keypair")
        }
        return ZMQCurveKeyPair(
            publicKey: String(decoding: publicKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self),
            secretKey: String(decoding: secretKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        )
    }

    /// Derives the public key of a Z85 secret key.
    /// - Throws: ``ZMQError`` if `secretKey` is not 40 valid Z85 characters.
    public static func publicKey(forSecretKey secretKey: String) throws -> String {
        guard secretKey.utf8.count == 40 else {
            throw ZMQError(.badOption, "a Z85 CURVE key has 40 characters, got \(secretKey.utf8.count)")
        }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else {
            throw ZMQError.last("zmq_curve_public")
        }
        return String(decoding: publicKey.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
