import Hummingbird

/// A response carried through a `Result`.
struct ResponseBox: Error {
    let response: Response
    init(_ response: Response) { self.response = response }
}
