"""AWS Signature Version 4 for ``HTTPModel(auth=...)``, computed by botocore, never here.

A SageMaker endpoint's runtime URL (``https://runtime.sagemaker.REGION.amazonaws.com/
endpoints/NAME/invocations``) takes requests signed with the caller's AWS credentials.
:class:`SigV4Auth` hands each request (method, URL, body, content type) to botocore's own
signer and copies the headers it adds (``Authorization``, ``X-Amz-Date``,
``X-Amz-Security-Token``) onto the request; every attempt, retries included, is signed anew.
Only the headers the signature needs are shown to botocore, so a secret header of the user's
never reaches botocore's debug log.

Needs botocore: ``pip install 'surrogate-xai[aws]'``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx

from ...exceptions import ConfigurationError

#: Request headers that take part in the signature.
SIGNED_HEADERS = ("host", "content-type", "content-length")
#: Headers botocore's signer adds.
ADDED_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")


class SigV4Auth(httpx.Auth):
    """Sign every request with SigV4 through botocore.

    Parameters
    ----------
    region : str
        The AWS region of the endpoint, e.g. ``"eu-west-1"``.
    service : str
        The signing name of the service (``"sagemaker"`` for SageMaker runtime).
    credentials : botocore.credentials.Credentials, optional
        Default: botocore's credential chain (environment, config files, instance role), read
        once on first use.
    """

    requires_request_body = True

    def __init__(self, region: str, service: str = "sagemaker", credentials: Any = None) -> None:
        try:
            import botocore.auth  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "SigV4Auth signs with botocore: pip install 'surrogate-xai[aws]'"
            ) from exc
        if not isinstance(region, str) or not region:
            raise ConfigurationError("SigV4Auth needs the endpoint's region, e.g. 'eu-west-1'")
        self.region = region
        self.service = service
        self._credentials = credentials

    def _resolved(self) -> Any:
        if self._credentials is None:
            import botocore.session

            self._credentials = botocore.session.get_session().get_credentials()
            if self._credentials is None:
                raise ConfigurationError(
                    "SigV4Auth found no AWS credentials (environment, config files or role)"
                )
        return self._credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth as Signer
        from botocore.awsrequest import AWSRequest

        headers = {k: v for k, v in request.headers.items() if k.lower() in SIGNED_HEADERS}
        aws = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        Signer(self._resolved(), self.service, self.region).add_auth(aws)
        for name in ADDED_HEADERS:
            if name in aws.headers:
                request.headers[name] = aws.headers[name]
        yield request
