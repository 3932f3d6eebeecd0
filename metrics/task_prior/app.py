import evaluate
from evaluate.utils import launch_gradio_widget

# the script by path: a Space's folder is not named task_prior
module = evaluate.load(__file__.replace("app.py", "task_prior.py"))
launch_gradio_widget(module)
