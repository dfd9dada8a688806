{% import "labels.md" as l %}
# Crea el rol de IAM de solo lectura que permite a la plataforma de
# facturación leer la cuenta de AWS {{ account_id }} ({{ customer }}).
# Ejecútelo con credenciales de esa cuenta que puedan crear roles de IAM
# (sirve AWS CloudShell en la consola de la cuenta){% if probing %}. Mantenga el nombre del
# rol: orglink lo encuentra solo en unos minutos, no hay que enviar nada.
{% else %} y envíe a orglink el ARN
# que imprime el último comando.
{% endif %}cat > orglink-trust-policy.json <<'POLICY'
{{ trust_policy }}
POLICY
aws iam create-role --role-name {{ role_name }} --description '{{ l.role_description() }}' --assume-role-policy-document file://orglink-trust-policy.json
{% for arn in managed_policy_arns %}
aws iam attach-role-policy --role-name {{ role_name }} --policy-arn {{ arn }}
{% endfor %}
aws iam get-role --role-name {{ role_name }} --query Role.Arn --output text
