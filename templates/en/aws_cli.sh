{% import "labels.md" as l %}
# Creates the read-only IAM role that lets the billing platform read AWS
# account {{ account_id }} ({{ customer }}).
# Run with credentials of that account allowed to create IAM roles
# (AWS CloudShell in the account's console works){% if probing %}. Keep the role name:
# orglink then finds the role by itself within minutes, nothing to send back.
{% else %}, then send the ARN that
# the last command prints back to orglink.
{% endif %}cat > orglink-trust-policy.json <<'POLICY'
{{ trust_policy }}
POLICY
aws iam create-role --role-name {{ role_name }} --description '{{ l.role_description() }}' --assume-role-policy-document file://orglink-trust-policy.json
{% for arn in managed_policy_arns %}
aws iam attach-role-policy --role-name {{ role_name }} --policy-arn {{ arn }}
{% endfor %}
aws iam get-role --role-name {{ role_name }} --query Role.Arn --output text
