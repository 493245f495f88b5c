import Foundation
import Distributed
import SwiftProtobuf

/// Decodes a received call's arguments, one serialized protobuf message each.
public struct ClusterInvocationDecoder: DistributedTargetInvocationDecoder {
    public typealias SerializationRequirement = any SwiftProtobuf.Message

    let method: String
    let arguments: [Data]
    var index = 0

    init(method: String, arguments: [Data]) {
        self.method = method
        self.arguments = arguments
    }

    public mutating func decodeGenericSubstitutions() throws -> [any Any.Type] { [] }

    public mutating func decodeNextArgument<Argument: SwiftProtobuf.Message>() throws -> Argument {
        guard index < arguments.count else {
            throw RemoteCallError(
                code: RemoteCallError.argumentsInvalid, typeName: "",
                message: "\(method): too few arguments, \(arguments.count) given")
        }
        defer { index += 1 }
        do {
            return try Argument(serializedBytes: arguments[index])
        } catch {
            throw RemoteCallError(
                code: RemoteCallError.argumentsInvalid, typeName: "",
                message: "\(method): argument \(index + 1) is not a valid \(Argument.protoMessageName): \(error)")
        }
    }

    public mutating func decodeErrorType() throws -> (any Any.Type)? { nil }

    public mutating func decodeReturnType() throws -> (any Any.Type)? { nil }
}
