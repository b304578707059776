internal import CUV
private import CLLHTTP
private import CTLS

/// What `--version` prints: the version and what the binary was built with.
package enum BuildInfo {
    /// Bumped with each landed issue set (0.x while the protocol surface still grows).
    package static let version = "0.12.0"

    static var swiftVersion: String {
        #if compiler(>=6.4)
        "6.4 or later"
        #elseif compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #elseif compiler(>=6.1)
        "6.1"
        #else
        "6.0"
        #endif
    }

    static var configuration: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }

    package static var text: String {
        """
        avr-core \(version)
        build: \(configuration), Swift \(swiftVersion)
        libuv: \(String(cString: uv_version_string()))
        llhttp: \(LLHTTP_VERSION_MAJOR).\(LLHTTP_VERSION_MINOR).\(LLHTTP_VERSION_PATCH)
        OpenSSL: \(String(cString: ctls_library_version()))

        """
    }
}
