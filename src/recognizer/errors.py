"""One exception tree for everything a user can get wrong or run into.

Every message says what happened *and* what to do next, because these messages are what a user
sees on the command line and in HTTP problem responses::

    RecognizerError
    ├── ConfigError                 settings that cannot work together
    ├── ModelError
    │   ├── UnknownModelError       name not in the registry
    │   ├── WeightsNotFoundError    no local file, and no download possible
    │   ├── WeightsIntegrityError   hash mismatch, truncated file, wrong shapes
    │   └── EngineError             an engine failed to load or run
    │       └── EngineUnavailableError  optional backend not installed
    ├── NotReadyError               the service is still loading or warming up
    │   ├── ModelNotLoadedError     a v2 readiness probe's "no" (a 4xx, as the protocol says)
    │   ├── HistoryUnavailableError sync durability: the row could not be committed in time
    │   └── RateLimiterUnavailableError  limits fail closed and their store is unreachable
    ├── AuthError
    │   ├── AuthenticationError     no credentials, or wrong, revoked or expired ones (401)
    │   ├── PermissionDeniedError   valid credentials without the route's scope (403)
    │   │   └── CsrfError           a cookie-authenticated change without its X-CSRF-Token (403)
    │   └── RateLimitedError        over the key's or user's rate limit (429)
    ├── RequestError                a request parameter or body the API cannot use
    │   ├── NotFoundError           a history row (or other record) that does not exist
    │   ├── FeatureUnavailableError an optional extra that is not installed (Parquet export)
    │   ├── UnsupportedMediaError   a body that is not an image content type
    │   ├── RequestTooLargeError    a body over its route's limit (checked while it streams)
    │   ├── BadArchiveError         a job's upload that is not a usable zip (broken, empty, a bomb)
    │   ├── PathNotAllowedError     a job's folder outside the server's allowed roots (403)
    │   ├── JobNotFinishedError     a job's results asked for before it is done (409)
    │   ├── JobQueueFullError       too many jobs already waiting (429)
    │   ├── BadSourceError          a stream source that cannot be used: unknown scheme, not a video,
    │   │                           no such file or device, refused or unreachable (422)
    │   ├── StreamExistsError       a stream name already in use (409)
    │   └── TooManyStreamsError     the server runs its most streams already (429)
    └── ImageError                  the caller's input, never the server's fault
        ├── EmptyImageError
        ├── NotAnImageError         not a format we decode (PDF renamed .jpg, text)
        ├── CorruptImageError       a known format that fails to decode (truncated JPEG)
        ├── ImageTooLargeError      over the byte or pixel limit (decompression bombs)
        └── UnreadableFileError     a folder job's file that cannot be read (permissions, I/O)

The HTTP layer maps these classes to status codes in one table; nothing else does.
"""

from __future__ import annotations


class RecognizerError(Exception):
    """Base class: catch this to handle every failure the package reports on purpose.

    ``public`` is what an HTTP client may read when the message itself names things of the server
    (file paths): the full message goes to the server's log and the command line, ``public`` to
    the problem response.
    """

    #: short, stable identifier used in JSON error bodies and logs
    code = "recognizer_error"

    def __init__(
        self, message: str = "", public: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.public = public
        #: response headers the error brings (WWW-Authenticate, Retry-After, RateLimit-*)
        self.headers = headers


class ConfigError(RecognizerError):
    code = "config_error"


class ModelError(RecognizerError):
    code = "model_error"


class UnknownModelError(ModelError):
    code = "unknown_model"


class WeightsNotFoundError(ModelError):
    code = "weights_not_found"


class WeightsIntegrityError(ModelError):
    code = "weights_integrity"


class EngineError(ModelError):
    code = "engine_error"


class EngineUnavailableError(EngineError):
    code = "engine_unavailable"


class NotReadyError(RecognizerError):
    code = "not_ready"


class ModelNotLoadedError(NotReadyError):
    code = "model_not_loaded"


class HistoryUnavailableError(NotReadyError):
    code = "history_unavailable"


class RateLimiterUnavailableError(NotReadyError):
    code = "rate_limiter_unavailable"


class AuthError(RecognizerError):
    code = "auth_error"


class AuthenticationError(AuthError):
    code = "unauthenticated"


class PermissionDeniedError(AuthError):
    code = "forbidden"


class CsrfError(PermissionDeniedError):
    code = "csrf_failed"


class RateLimitedError(AuthError):
    code = "rate_limited"


class RequestError(RecognizerError):
    code = "bad_request"


class NotFoundError(RequestError):
    code = "not_found"


class FeatureUnavailableError(RequestError):
    code = "feature_unavailable"


class UnsupportedMediaError(RequestError):
    code = "unsupported_media_type"


class RequestTooLargeError(RequestError):
    code = "request_too_large"


class BadArchiveError(RequestError):
    code = "bad_archive"


class PathNotAllowedError(RequestError):
    code = "path_not_allowed"


class JobNotFinishedError(RequestError):
    code = "job_not_finished"


class JobQueueFullError(RequestError):
    code = "job_queue_full"


class BadSourceError(RequestError):
    code = "bad_source"


class StreamExistsError(RequestError):
    code = "stream_exists"


class TooManyStreamsError(RequestError):
    code = "too_many_streams"


class ImageError(RecognizerError):
    code = "image_error"


class EmptyImageError(ImageError):
    code = "empty_image"


class NotAnImageError(ImageError):
    code = "not_an_image"


class CorruptImageError(ImageError):
    code = "corrupt_image"


class ImageTooLargeError(ImageError):
    code = "image_too_large"


class UnreadableFileError(ImageError):
    code = "unreadable_file"
