{% import "labels.md" as l %}
# Creates the read-only IAM role that lets the billing platform read AWS
# account {{ account_id }}: ReadOnlyAccess reads almost everything in the
# account and changes nothing.
{% if business %}
# For Business support it also attaches AWSSupportAccess, which the
# platform's security and compliance report uses (the role is verified
# without it).
{% endif %}
# Run with credentials of that account allowed to create IAM roles
# (AWS CloudShell in the account's console works).{% if probing %} Keep the role name:
# the platform then finds the role automatically within minutes; nothing to send.
{% else %} Then send the ARN that
# the last command prints to whoever sent you these commands.
{% endif %}set -euo pipefail

account_id={{ account_id | sh }}
customer={{ customer | sh }}
role_name={{ role_name | sh }}

if aws iam get-role --role-name "$role_name" >/dev/null 2>&1; then
  echo "A role named $role_name already exists in AWS account $account_id: this script leaves it as it is." >&2
  echo "If you created it with these instructions before, there is nothing more to run. Otherwise set role_name above to a name not in use (then send the new role's ARN to whoever sent you these commands), or check that role's trust policy: only the platform's account, with this account's external ID." >&2
  exit 1
fi
printf 'Creating the role %s in AWS account %s (%s).\n' "$role_name" "$account_id" "$customer"
aws iam create-role --role-name "$role_name" --description {{ l.role_description() | sh }} --assume-role-policy-document {{ trust_policy | sh }}
{% for arn in managed_policy_arns %}
aws iam attach-role-policy --role-name "$role_name" --policy-arn {{ arn | sh }}
{% endfor %}
aws iam get-role --role-name "$role_name" --query Role.Arn --output text
