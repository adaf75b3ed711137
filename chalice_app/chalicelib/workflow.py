"""Starting the job workflow (statemachine/job_workflow.asl.json) for one job."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from .contract import error_code
from .exceptions import WorkflowError

__all__ = ["WorkflowStarter"]

logger = logging.getLogger(__name__)


class WorkflowStarter:
    """StartExecution named after the job id. The stage's workflow is Express, which does not refuse
    a second start of the same name as Standard does: the upload event's claim on the job
    (JobStore.claim_upload) is what keeps one job to one execution. The name still ties an
    execution to its job in the console, and the ExecutionAlreadyExists answer is handled for a
    stage whose workflow is Standard."""

    def __init__(self, sfn_client: Any, state_machine_arn: str) -> None:
        self._sfn = sfn_client
        self._arn = state_machine_arn

    def start(self, job_id: str, execution_input: dict[str, Any]) -> bool:
        """True when an execution started, False when one with this name exists already."""
        try:
            self._sfn.start_execution(
                stateMachineArn=self._arn, name=job_id, input=json.dumps(execution_input)
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                logger.info("job %s: execution exists already", job_id)
                return False
            raise WorkflowError(f"could not start the workflow for job {job_id}", exc) from exc
        return True
